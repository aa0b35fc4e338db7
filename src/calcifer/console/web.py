"""The console's front door: the session guard every page passes, login, logout, and the assets.

A page handler is wrapped by `page`: without a live session a GET is redirected to the login page (and
any other method refused the same way); a POST must carry the session's CSRF token and, when the
browser names one, come from this origin. The login form takes the master key, an `admin` key or a
`team-admin` key (the keys that may manage the gateway; an ordinary key cannot sign in); attempts are
throttled per client address.

A session signed in with a key records the key's id; each page looks the key up again and acts as it
(through the APIs, whose own rules confine a team-admin to its team), so revoking the key, or taking its
role away, ends its sessions at their next page. An API refusal the page does not handle itself
(a team-admin opening another team's page) is shown as a refusal with the API's status.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp

from calcifer.console.api import ApiError, ConsoleApi
from calcifer.console.render import Renderer
from calcifer.console.sessions import (
    LoginThrottle,
    MemorySessionStore,
    Networks,
    Sessions,
    client_address,
    csrf_matches,
    trusted,
)
from calcifer.domain.errors import GatewayError
from calcifer.domain.keys import KeyStore
from calcifer.domain.sessions import ConsoleSession, SessionStore
from calcifer.http.auth import MASTER, Authenticator, Identity

COOKIE = "calcifer_console"
_MAX_FORM = 64 * 1024


class Console:
    """What the console keeps while the gateway runs: sessions, the login throttle, templates, assets."""

    def __init__(
        self,
        store: SessionStore | None = None,
        throttle: LoginThrottle | None = None,
        *,
        trusted_proxies: Networks = (),
    ) -> None:
        self.sessions = Sessions(store or MemorySessionStore())
        self.throttle = throttle or LoginThrottle()
        self.trusted_proxies = trusted_proxies
        self.render = Renderer()

    def attach(self, store: SessionStore) -> None:
        """Keep sessions in `store` (the database's, opened at start-up)."""
        self.sessions = Sessions(store, self.sessions.policy)


@dataclass(slots=True)
class Visit:
    """One signed-in request: its session, the APIs as its identity, and the form it posted."""

    request: Request
    session: ConsoleSession
    api: ConsoleApi
    identity: Identity
    form: dict[str, str] = field(default_factory=dict)

    @property
    def role(self) -> str:
        """What the visitor signed in as: `master`, `admin` or `team-admin`."""
        key = self.identity.key
        return "master" if key is None or key.role is None else key.role

    def page(self, template: str, status: int = 200, **context: object) -> Response:
        return console_of(self.request).render.page(
            template, status, session=self.session, path=self.request.url.path, role=self.role, **context
        )


PageHandler = Callable[[Visit], Awaitable[Response]]


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def _now(request: Request) -> float:
    return float(request.app.state.clock.now())


async def read_form(request: Request) -> dict[str, str]:
    """An urlencoded form (the console's only kind), at most 64 KiB."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_FORM:
            raise _TooLarge()
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


class _TooLarge(Exception):
    pass


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None or (origin == "null" and request.headers.get("sec-fetch-site") == "same-origin"):
        return True
    return urlsplit(origin).netloc == request.headers.get("host", "")


def _refuse(request: Request, message: str, status: int = 403) -> Response:
    return console_of(request).render.page("refused.html", status, session=None, path="", message=message)


def page(handler: PageHandler) -> Callable[[Request], Awaitable[ASGIApp]]:
    async def guarded(request: Request) -> ASGIApp:
        console = console_of(request)
        session = await console.sessions.get(request.cookies.get(COOKIE), _now(request))
        identity = None if session is None else await _identity(request, session)
        if session is None or identity is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/ui/login?next={quote(target, safe='')}", status_code=303)
        form: dict[str, str] = {}
        if request.method != "GET":
            if not _same_origin(request):
                return _refuse(request, "This change did not come from the console's own pages.")
            try:
                form = await read_form(request)
            except _TooLarge:
                return _refuse(request, "The form is too large.", 413)
            if not csrf_matches(session, form.get("csrf")):
                return _refuse(request, "The form had no valid CSRF token: reload the page and try again.")
        visit = Visit(request, session, ConsoleApi(request.app, identity), identity, form)
        try:
            return await handler(visit)
        except ApiError as refused:
            return visit.page("refused.html", refused.status, message=refused.message)

    return guarded


async def _identity(request: Request, session: ConsoleSession) -> Identity | None:
    """Who the session acts as: the master key, or its key as it is now (None, and the session ends,
    when the key is gone, revoked or no longer has a role)."""
    if session.key_id is None:
        return MASTER
    keys: KeyStore | None = getattr(request.app.state, "keys", None)
    key = None if keys is None else await keys.get(session.key_id)
    if key is None or key.revoked or key.role is None:
        await console_of(request).sessions.store.remove(session.digest)
        return None
    return Identity(is_master=False, key=key)


def _next_page(target: str | None) -> str:
    """Where to go after login: a console path only (never another site)."""
    if not target or "\\" in target:
        return "/ui"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not (parts.path == "/ui" or parts.path.startswith("/ui/")):
        return "/ui"
    return target


def _login_page(request: Request, status: int = 200, error: str | None = None) -> Response:
    authenticator: Authenticator = request.app.state.authenticator
    return console_of(request).render.page(
        "login.html",
        status,
        session=None,
        path="/ui/login",
        error=error,
        enabled=authenticator.enabled,
        next=_next_page(request.query_params.get("next")),
    )


async def login_form(request: Request) -> ASGIApp:
    return _login_page(request)


async def login(request: Request) -> ASGIApp:
    console = console_of(request)
    authenticator: Authenticator = request.app.state.authenticator
    if not authenticator.enabled:
        return _login_page(request, 403)
    if not _same_origin(request):
        return _refuse(request, "This login did not come from the console's own page.")
    peer = request.client.host if request.client else None
    forwarded = ",".join(request.headers.getlist("x-forwarded-for")) or None
    client = client_address(peer, forwarded, console.trusted_proxies)
    now = _now(request)
    wait = console.throttle.retry_after(client, now)
    if wait > 0:
        response = _login_page(request, 429, f"Too many failed attempts: try again in {int(wait) + 1} s.")
        response.headers["retry-after"] = str(int(wait) + 1)
        return response
    try:
        form = await read_form(request)
    except _TooLarge:
        return _refuse(request, "The form is too large.", 413)
    try:
        identity = await authenticator.identify(form.get("key", "").strip() or None)
    except GatewayError:
        console.throttle.failed(client, now)
        return _login_page(request, 401, "That key is not valid.")
    key = identity.key
    if not identity.is_master and (key is None or key.role is None):
        console.throttle.failed(client, now)
        return _login_page(
            request, 403, "This key cannot manage the gateway: sign in with the master key or an admin key."
        )
    console.throttle.succeeded(client)
    if key is None:
        token, _ = await console.sessions.open(None, "master key", now)
    else:
        where = f" of team '{key.team_id}'" if key.role == "team-admin" else ""
        token, _ = await console.sessions.open(key.id, f"{key.role} key '{key.name}'{where}", now)
    response = RedirectResponse(_next_page(form.get("next")), status_code=303)
    proto = request.headers.get("x-forwarded-proto")  # TLS ended at a proxy, if a trusted one says so
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(console.sessions.policy.lifetime),
        path="/ui",
        httponly=True,
        secure=request.url.scheme == "https" or (proto == "https" and trusted(peer, console.trusted_proxies)),
        samesite="strict",
    )
    return response


async def _logout(visit: Visit) -> Response:
    await console_of(visit.request).sessions.store.remove(visit.session.digest)
    return _signed_out()


async def _logout_everywhere(visit: Visit) -> Response:
    await console_of(visit.request).sessions.store.remove_all(visit.session.key_id)
    return _signed_out()


def _signed_out() -> Response:
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path="/ui", httponly=True, samesite="strict")
    return response


logout = page(_logout)
logout_everywhere = page(_logout_everywhere)


async def asset(request: Request) -> ASGIApp:
    found = console_of(request).render.asset(
        request.path_params["name"], request.headers.get("if-none-match")
    )
    if found is None:
        return Response("Not found", status_code=404, media_type="text/plain")
    return found
