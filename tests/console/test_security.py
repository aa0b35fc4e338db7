"""The console as a security boundary: sessions, CSRF, escaping, secrets, login throttling."""

from __future__ import annotations

import re
from pathlib import Path

import httpx2 as httpx
import pytest

from calcifer.console.routes import console_routes
from tests.conftest import StartGateway
from tests.console.conftest import MASTER, auth, csrf_of, log_in
from tests.fakes.threaded import AsgiServer

PAGES = ["/ui", "/ui/spend", "/ui/requests", "/ui/keys", "/ui/models"]
HOSTILE = '<script>alert(1)</script>"onerror=alert(2) x'


def test_every_console_route_without_a_session_redirects_to_login(secured: AsgiServer) -> None:
    open_routes = {"/ui/login", "/ui/static/{name}"}
    checked = 0
    for route in console_routes():
        if route.path in open_routes:
            continue
        path = re.sub(r"\{\w+\}", "some-id", route.path)
        for method in route.methods:
            answer = httpx.request(method, secured.url + path, data={"csrf": "x"}, follow_redirects=False)
            assert answer.status_code == 303, (method, path)
            assert answer.headers["location"].startswith("/ui/login?next=%2Fui"), (method, path)
            checked += 1
    assert checked >= 10
    forged = httpx.get(secured.url + "/ui", cookies={"calcifer_console": "forged"}, follow_redirects=False)
    assert forged.status_code == 303


def _routes(gateway: AsgiServer) -> set[str]:
    return {p for p in PAGES if httpx.get(gateway.url + p, follow_redirects=False).status_code != 404}


def test_login_sets_a_strict_http_only_cookie_and_returns_to_the_page_asked(secured: AsgiServer) -> None:
    with httpx.Client(base_url=secured.url, follow_redirects=False) as client:
        first = client.get("/ui?x=1")
        assert first.status_code == 303
        form = client.get(first.headers["location"])
        assert form.status_code == 200 and 'name="next" value="/ui?x=1"' in form.text
        answer = client.post("/ui/login", data={"key": MASTER, "next": "/ui?x=1"})
        assert answer.status_code == 303 and answer.headers["location"] == "/ui?x=1"
        cookie = answer.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie
        assert "Secure" not in cookie  # plain HTTP here; over TLS the cookie is Secure
        assert MASTER not in cookie
        page = client.get("/ui")
        assert page.status_code == 200 and "Overview" in page.text
        assert page.headers["cache-control"] == "no-store" and page.headers["x-frame-options"] == "DENY"
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert MASTER not in page.text


def test_login_never_sends_the_visitor_to_another_site(secured: AsgiServer) -> None:
    for target in ["https://evil.example/", "//evil.example/ui", "/ui\\@evil.example", "/admin/keys"]:
        with httpx.Client(base_url=secured.url, follow_redirects=False) as client:
            answer = client.post("/ui/login", data={"key": MASTER, "next": target})
            assert answer.headers["location"] == "/ui", target


def test_wrong_keys_are_refused_and_throttled(secured: AsgiServer) -> None:
    created = httpx.post(secured.url + "/admin/keys", json={"name": "app"}, headers=auth()).json()
    virtual = httpx.post(secured.url + "/ui/login", data={"key": created["key"]})
    assert virtual.status_code == 403 and "master key" in virtual.text and "set-cookie" not in virtual.headers
    statuses = [httpx.post(secured.url + "/ui/login", data={"key": "wrong"}).status_code for _ in range(5)]
    assert statuses == [401, 401, 401, 401, 429]
    throttled = httpx.post(secured.url + "/ui/login", data={"key": MASTER})
    assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) > 0
    assert "set-cookie" not in throttled.headers


def _failed_logins(gateway: AsgiServer, forwarded_for: list[str]) -> list[int]:
    return [
        httpx.post(
            gateway.url + "/ui/login", data={"key": "wrong"}, headers={"x-forwarded-for": xff}
        ).status_code
        for xff in forwarded_for
    ]


def test_a_forged_forwarded_address_from_an_untrusted_peer_does_not_escape_the_throttle(
    start_gateway: StartGateway, gateway_env: dict[str, str]
) -> None:
    for trusted in ("", "10.0.0.0/8"):  # no proxy trusted, or proxies that are not this peer
        env = {**gateway_env, "CALCIFER_MASTER_KEY": MASTER, "CALCIFER_TRUSTED_PROXIES": trusted}
        gateway = start_gateway(env)
        forged = [f"198.51.100.{n}" for n in range(7)]  # a new address for every attempt
        assert _failed_logins(gateway, forged) == [401] * 5 + [429, 429], trusted


def test_behind_a_trusted_proxy_each_client_is_throttled_by_its_own_address(
    start_gateway: StartGateway, gateway_env: dict[str, str]
) -> None:
    env = {**gateway_env, "CALCIFER_MASTER_KEY": MASTER, "CALCIFER_TRUSTED_PROXIES": "127.0.0.1"}
    gateway = start_gateway(env)  # this test's requests come from 127.0.0.1: the balancer
    # The client writes a forged hop first; the proxy appends the address it saw, the one that counts.
    assert _failed_logins(gateway, [f"10.6.6.{n}, 203.0.113.1" for n in range(6)]) == [401] * 5 + [429]
    assert _failed_logins(gateway, ["203.0.113.2"]) == [401]  # another client is not locked out
    other = httpx.post(
        gateway.url + "/ui/login", data={"key": MASTER}, headers={"x-forwarded-for": "203.0.113.2"}
    )
    assert other.status_code == 303 and "set-cookie" in other.headers
    throttled = httpx.post(
        gateway.url + "/ui/login", data={"key": MASTER}, headers={"x-forwarded-for": "203.0.113.1"}
    )
    assert throttled.status_code == 429 and "set-cookie" not in throttled.headers


def test_changes_need_the_csrf_token_and_the_console_origin(browser: httpx.Client) -> None:
    page = browser.get("/ui").text
    token = csrf_of(page)
    assert browser.post("/ui/logout", data={}).status_code == 403
    assert browser.post("/ui/logout", data={"csrf": token + "x"}).status_code == 403
    cross = browser.post("/ui/logout", data={"csrf": token}, headers={"origin": "https://evil.example"})
    assert cross.status_code == 403
    assert browser.get("/ui").status_code == 200  # none of those signed out
    out = browser.post("/ui/logout", data={"csrf": token})
    assert out.status_code == 303 and out.headers["location"] == "/ui/login"
    assert browser.get("/ui").status_code == 303


def test_sessions_are_revoked_everywhere_at_once(secured: AsgiServer) -> None:
    first, second = log_in(secured), log_in(secured)
    token = csrf_of(first.get("/ui").text)
    assert first.post("/ui/logout/everywhere", data={"csrf": token}).status_code == 303
    assert first.get("/ui").status_code == 303 and second.get("/ui").status_code == 303


def test_without_a_master_key_the_console_cannot_be_entered(gateway: AsgiServer) -> None:
    form = httpx.get(gateway.url + "/ui/login")
    assert form.status_code == 200 and "CALCIFER_MASTER_KEY" in form.text
    assert httpx.post(gateway.url + "/ui/login", data={"key": "anything"}).status_code == 403
    assert httpx.get(gateway.url + "/ui", follow_redirects=False).status_code == 303


def test_hostile_names_render_as_text_and_secrets_never_appear(
    secured: AsgiServer, browser: httpx.Client
) -> None:
    created = httpx.post(
        secured.url + "/admin/keys",
        json={"name": HOSTILE, "max_budget": 5, "metadata": {"team": HOSTILE}},
        headers=auth(),
    ).json()
    secret = created["key"]
    body = {"model": "echo4", "messages": [{"role": "user", "content": "hi"}], "user": HOSTILE}
    assert (
        httpx.post(secured.url + "/v1/chat/completions", json=body, headers=auth(secret)).status_code == 200
    )
    for path in sorted(_routes(secured)):
        page = browser.get(path)
        assert page.status_code == 200, path
        assert "<script>alert" not in page.text and '"onerror=' not in page.text, path
        assert secret not in page.text and MASTER not in page.text, path
    overview = browser.get("/ui").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&#34;onerror=alert(2) x" in overview


@pytest.mark.parametrize("name", ["console.css", "console.js", "chart.umd.min.js"])
def test_assets_are_served_from_the_package_with_validators(secured: AsgiServer, name: str) -> None:
    answer = httpx.get(f"{secured.url}/ui/static/{name}")
    assert answer.status_code == 200 and answer.headers["x-content-type-options"] == "nosniff"
    again = httpx.get(f"{secured.url}/ui/static/{name}", headers={"if-none-match": answer.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert httpx.get(f"{secured.url}/ui/static/nope.js").status_code == 404


def test_chart_js_is_the_version_the_lockfile_pins() -> None:
    import json
    from importlib import resources
    from pathlib import Path

    lock = json.loads((Path(__file__).parents[2] / "frontend" / "package-lock.json").read_text())
    pinned = lock["packages"]["node_modules/chart.js"]["version"]
    vendored = resources.files("calcifer.console").joinpath("static/chart.umd.min.js").read_text()
    found = re.search(r"Chart\.js v(\S+)", vendored[:200])
    assert found is not None and found.group(1) == pinned


def test_a_session_is_shared_by_replicas_and_logout_ends_it_on_all(
    secured: AsgiServer, start_gateway: StartGateway, gateway_env: dict[str, str]
) -> None:
    other = start_gateway({**gateway_env, "CALCIFER_MASTER_KEY": MASTER})  # the same database
    client = log_in(secured)
    cookie = client.cookies.get("calcifer_console")
    assert cookie is not None
    elsewhere = httpx.Client(base_url=other.url, cookies={"calcifer_console": cookie}, follow_redirects=False)
    page = elsewhere.get("/ui")
    assert page.status_code == 200
    assert elsewhere.post("/ui/logout", data={"csrf": csrf_of(page.text)}).status_code == 303
    assert client.get("/ui").status_code == 303


def test_model_names_from_the_config_file_render_as_text(
    tmp_path: Path, start_gateway: StartGateway, gateway_env: dict[str, str]
) -> None:
    config = tmp_path / "calcifer.yaml"
    config.write_text(
        "providers:\n  - name: local\n    base_url: http://127.0.0.1:9/v1\n"
        "    models: ['<script>alert(1)</script>', '\"onerror=alert(2)']\n"
    )
    gateway = start_gateway({**gateway_env, "CALCIFER_MASTER_KEY": MASTER, "CALCIFER_CONFIG": str(config)})
    client = log_in(gateway)
    page = client.get("/ui/models?show=unpriced")
    assert page.status_code == 200
    assert "<script>alert(1)" not in page.text and '"onerror=' not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and "&#34;onerror=alert(2)" in page.text


def test_no_api_answer_carries_an_existing_keys_secret(secured: AsgiServer) -> None:
    created = httpx.post(secured.url + "/admin/keys", json={"name": "app"}, headers=auth()).json()
    secret = created["key"]
    body = {"model": "echo4", "messages": [{"role": "user", "content": "hi"}]}
    headers = {**auth(secret), "x-request-id": "secret-check"}
    assert httpx.post(secured.url + "/v1/chat/completions", json=body, headers=headers).status_code == 200
    for path in [
        "/admin/keys",
        "/admin/keys?include_revoked=true",
        f"/admin/keys/{created['id']}",
        "/admin/requests",
        "/admin/requests/secret-check",
        "/admin/models",
        "/v1/spend?group_by=key",
    ]:
        answer = httpx.get(secured.url + path, headers=auth())
        assert answer.status_code in (200, 404), path  # the request's row may still be on its way
        assert secret not in answer.text and secret[8:] not in answer.text, path


def test_the_cookie_is_secure_when_the_console_is_served_over_tls(
    start_gateway: StartGateway, gateway_env: dict[str, str]
) -> None:
    # TLS ends at the balancer, which says so in X-Forwarded-Proto: believed only from a trusted proxy.
    for trusted, secure in (("127.0.0.1", True), ("", False)):
        env = {**gateway_env, "CALCIFER_MASTER_KEY": MASTER, "CALCIFER_TRUSTED_PROXIES": trusted}
        answer = httpx.post(
            start_gateway(env).url + "/ui/login",
            data={"key": MASTER},
            headers={"x-forwarded-proto": "https"},
            follow_redirects=False,
        )
        assert answer.status_code == 303
        cookie = answer.headers["set-cookie"]
        assert ("; Secure" in cookie) is secure and "HttpOnly" in cookie and "SameSite=strict" in cookie
