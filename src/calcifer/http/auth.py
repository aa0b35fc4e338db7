"""Who is calling: the master key, a virtual key, or (with no master key configured) anyone.

When `CALCIFER_MASTER_KEY` is set, every `/v1/*` request needs a key (`Authorization: Bearer ...` or
`x-api-key`), and `/admin/*` needs the master key itself. Keys are compared by digest in constant
time; a short in-process cache keeps the key store off the hot path (revocations through this
replica's admin API apply at once, through another replica within `ttl` seconds).
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass

from starlette.requests import Request

from calcifer.domain.errors import GatewayError
from calcifer.domain.keys import KeyStore, VirtualKey, hash_secret, live_key
from calcifer.domain.roles import managed_team

IDENTITY_KEY = "calcifer.identity"
_OPEN_PATHS = ("/health", "/ready")


@dataclass(frozen=True, slots=True)
class Identity:
    is_master: bool
    key: VirtualKey | None


MASTER = Identity(is_master=True, key=None)
ANONYMOUS = Identity(is_master=False, key=None)


class Unauthenticated(GatewayError):
    kind = "invalid_request_error"
    code = "invalid_api_key"
    http_status = 401
    refusal = "auth"


class Forbidden(GatewayError):
    kind = "permission_error"
    code = "forbidden"
    http_status = 403
    refusal = "auth"


class Authenticator:
    def __init__(self, master_key: str | None, keys: KeyStore | None, *, ttl: float = 5.0) -> None:
        self._master_digest = hash_secret(master_key) if master_key else None
        self._keys = keys
        self._ttl = ttl
        self._cache: dict[str, tuple[float, Identity | None]] = {}

    @property
    def enabled(self) -> bool:
        return self._master_digest is not None

    def attach(self, keys: KeyStore | None) -> None:
        """Use `keys` (opened at start-up) to look virtual keys up."""
        self._keys = keys
        self._cache.clear()

    def forget(self) -> None:
        """Drop cached keys (after an admin change through this replica)."""
        self._cache.clear()

    async def identify(self, presented: str | None) -> Identity:
        if self._master_digest is None:
            return ANONYMOUS
        if not presented:
            raise Unauthenticated(
                "Missing API key: send it as 'Authorization: Bearer <key>' or in the 'x-api-key' header."
            )
        digest = hash_secret(presented)
        now = time.monotonic()
        cached = self._cache.get(digest)  # never the master key's: it is not cached
        if cached is not None and cached[0] > now:
            identity = cached[1]
        elif hmac.compare_digest(digest, self._master_digest):
            return MASTER
        else:
            identity = await self._lookup(digest, now)
        if identity is None:
            raise Unauthenticated("Incorrect API key provided.")
        return identity

    async def _lookup(self, digest: str, now: float) -> Identity | None:
        """The identity of a virtual key's digest (None: no live key has it), cached for `ttl`
        seconds: the `Identity` itself, so that a request with a known key builds nothing."""
        key = await live_key(self._keys, digest) if self._keys is not None else None
        identity = None if key is None else Identity(is_master=False, key=key)
        if len(self._cache) > 100_000:
            self._cache.clear()
        self._cache[digest] = (now + self._ttl, identity)
        return identity


def caller_key(request: Request) -> VirtualKey | None:
    """The key a request was made with (None: the master key, or no keys on this gateway)."""
    identity: Identity | None = request.scope.get(IDENTITY_KEY)
    return identity.key if identity is not None else None


def caller_team(request: Request) -> str | None:
    """The team the caller is confined to (a team-admin key's), None when it is not."""
    return managed_team(caller_key(request))


def may_administer(identity: Identity, path: str, method: str = "GET") -> bool:
    """Whether `identity` may use the admin API at `path`: the master key and `admin` keys everywhere;
    a `team-admin` key reads its own team (`/admin/teams/<its team>`, and `/admin/teams`, which lists
    only it), manages that team's members, and uses `/admin/keys` and reads `/admin/requests`, whose
    handlers confine it to its team's keys and rows (`calcifer.domain.roles`). Anything else: no."""
    key = identity.key
    if identity.is_master or (key is not None and key.role == "admin"):
        return True
    if key is None or key.role != "team-admin" or key.team_id is None:
        return False
    reading = method in ("GET", "HEAD")
    own = f"/admin/teams/{key.team_id}"
    if path.startswith(own + "/members/") or _under(path, "/admin/keys"):
        return True
    return reading and (path in (own, "/admin/teams") or _under(path, "/admin/requests"))


def _under(path: str, base: str) -> bool:
    return path == base or path.startswith(base + "/")
