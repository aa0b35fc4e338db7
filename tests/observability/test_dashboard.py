"""The Grafana dashboard (`deploy/grafana/calcifer.json`): every query names only metrics that a scrape
of a real gateway exported after real traffic (answers, a stream, a failover with a cooldown, a cache hit,
a budget refusal, a ledger write), and every panel has one."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx2 as httpx

from calcifer.app import create_app
from calcifer.config.settings import Settings
from tests.fakes.openai_server import FakeOpenAI, Script, error_body
from tests.fakes.threaded import AsgiServer
from tests.http.test_keys_budgets import MASTER, auth
from tests.observability.scrape import Scrape, scrape
from tests.routing.conftest import CONFIG

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "calcifer.json"
BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hello"}]}


def queried_metrics(expr: str) -> set[str]:
    """The metric names a PromQL query reads (label names in `by (...)` and `{...}` are not)."""
    bare = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    bare = re.sub(r"\{[^}]*\}", " ", bare)
    return set(re.findall(r"\b(?:calcifer|gen_ai)_[a-z0-9_]+\b", bare))


def _traffic(tmp_path: Path) -> Scrape:
    primary, backup = FakeOpenAI(), FakeOpenAI()
    config = tmp_path / "calcifer.yaml"
    config.write_text(
        CONFIG.format(primary=primary.base_url, backup=backup.base_url, request_timeout="10s", tag="")
    )
    env = {
        "CALCIFER_DATABASE_URL": f"sqlite:///{tmp_path}/calcifer.db",
        "CALCIFER_CONFIG": str(config),
        "CALCIFER_MASTER_KEY": MASTER,
    }
    gateway = AsgiServer(create_app(Settings.from_env(env)))
    try:
        url = gateway.url + "/v1/chat/completions"
        master = auth(MASTER)
        created = httpx.post(
            gateway.url + "/admin/keys", json={"name": "b", "max_budget": "0.0006"}, headers=master
        )
        budgeted = auth(str(created.json()["key"]))
        boom = Script(status=500, body=error_body("The server had an error", "server_error"))
        primary.script(boom, boom)
        for _ in range(2):  # two failovers: primary cools down
            assert httpx.post(url, json=BODY, headers=master, timeout=10).status_code == 200
        cache = {**master, "x-calcifer-cache": "on"}
        assert [httpx.post(url, json=BODY, headers=cache, timeout=10).status_code for _ in "ab"] == [200, 200]
        with httpx.stream("POST", url, json={**BODY, "stream": True}, headers=master, timeout=10) as streamed:
            assert len(list(streamed.iter_lines())) > 3
        statuses = [httpx.post(url, json=BODY, headers=budgeted, timeout=10).status_code for _ in range(4)]
        assert 429 in statuses
        found = scrape(gateway.url + "/metrics")
        deadline = time.monotonic() + 10
        while "calcifer_database_write_seconds_count" not in found.names and time.monotonic() < deadline:
            found = scrape(gateway.url + "/metrics")
        return found
    finally:
        gateway.close()
        primary.close()
        backup.close()


def test_every_dashboard_query_names_a_metric_a_scrape_exported(tmp_path: Path) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exported = _traffic(tmp_path).names
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert len(queries) >= 20
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
    for expr in queries:
        names = queried_metrics(expr)
        assert names, expr
        assert names <= exported, (expr, names - exported)
    titles = " ".join(panel["title"].lower() for panel in dashboard["panels"])
    for topic in ("spend", "tokens", "duration", "first chunk", "error", "overhead", "budget"):
        assert topic in titles


def test_queried_metrics_skips_label_names() -> None:
    selector = '{gen_ai_operation_name="chat"}'
    expr = f"sum by (gen_ai_token_type) (rate(gen_ai_client_token_usage_bucket{selector}[5m]))"
    assert queried_metrics(expr) == {"gen_ai_client_token_usage_bucket"}
