"""The ledger keeps each request's attempts, the deployments tried in order and a stream's time to first
byte; `GET /admin/requests/{id}` returns them and the console's request page shows them."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
import orjson

from calcifer.app import create_app
from calcifer.config.settings import Settings
from tests.console.conftest import log_in
from tests.fakes.openai_server import Script, error_body
from tests.fakes.threaded import AsgiServer
from tests.http.test_request_log import eventually
from tests.routing.conftest import Start

MASTER = "mk-attempts-0123456789abcdefghijk"
BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hello"}]}


def logged(gateway: AsgiServer, request_id: str) -> Any:
    def found() -> Any:
        answer = httpx.get(
            gateway.url + f"/admin/requests/{request_id}", headers={"Authorization": f"Bearer {MASTER}"}
        )
        return orjson.loads(answer.content) if answer.status_code == 200 else None

    return eventually(found)


def test_a_failover_and_a_stream_are_recorded_with_attempts_deployments_and_ttfb(routed: Start) -> None:
    setup = routed()
    env = {**setup.env, "CALCIFER_MASTER_KEY": MASTER}
    env["CALCIFER_DATABASE_URL"] = f"sqlite:///{setup.database.with_name('attempts.db')}"
    gateway = AsgiServer(create_app(Settings.from_env(env)))
    setup.servers.append(gateway)
    setup.primary.script(Script(status=500, body=error_body("The server had an error", "server_error")))
    master = {"Authorization": f"Bearer {MASTER}"}
    url = gateway.url + "/v1/chat/completions"

    failover = httpx.post(url, json=BODY, headers={**master, "x-request-id": "failed-over"}, timeout=10)
    assert failover.status_code == 200 and failover.headers["x-calcifer-attempts"] == "2"
    streamed = httpx.post(
        url, json={**BODY, "stream": True}, headers={**master, "x-request-id": "streamed"}, timeout=10
    )
    assert streamed.status_code == 200 and b"[DONE]" in streamed.content

    row = logged(gateway, "failed-over")
    assert (row["attempts"], row["deployments"]) == (2, ["primary/gpt-4o", "backup/gpt-4o"])
    assert row["provider"] == "backup" and row["ttfb_ms"] is None
    stream_row = logged(gateway, "streamed")
    assert (stream_row["attempts"], stream_row["deployments"]) == (1, ["primary/gpt-4o"])
    assert isinstance(stream_row["ttfb_ms"], int) and 0 <= stream_row["ttfb_ms"] <= stream_row["latency_ms"]

    browser = log_in(gateway, MASTER)
    page = browser.get("/ui/requests/failed-over").text
    assert "<dt>Attempts</dt><dd>2</dd>" in page
    assert page.index("primary/gpt-4o") < page.index("backup/gpt-4o")
    stream_page = browser.get("/ui/requests/streamed").text
    assert f"<dt>Time to first byte</dt><dd>{stream_row['ttfb_ms']} ms</dd>" in stream_page
    browser.close()
