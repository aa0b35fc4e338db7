"""compose.yaml, read as Compose reads it: two replicas behind the balancer, a one-shot migrate service
they wait for, PostgreSQL and Redis healthy first, an observability profile, and only Calcifer's own
settings in its environment with no secret written down."""

from __future__ import annotations

import re
from typing import Any

import yaml

from calcifer.config.settings import Settings
from calcifer.console.sessions import trusted
from tests.deploy.checks import PORT, ROOT, inlined_secret, known_env_names

COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]


def test_two_replicas_wait_for_the_migration_and_never_migrate() -> None:
    gateway, migrate = SERVICES["gateway"], SERVICES["migrate"]
    assert gateway["deploy"]["replicas"] == 2
    assert gateway["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert gateway["depends_on"]["redis"]["condition"] == "service_healthy"
    assert migrate["command"] == ["migrate"] and migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert gateway["environment"]["CALCIFER_MIGRATE"] == "off"
    assert migrate["image"] == gateway["image"]
    for service in (gateway, migrate):
        assert service["read_only"] is True and "/tmp" in service["tmpfs"]
        assert service["environment"]["CALCIFER_DATABASE_URL"].startswith("postgresql://")
        assert "@postgres:5432/" in service["environment"]["CALCIFER_DATABASE_URL"]
    assert gateway["environment"]["CALCIFER_REDIS_URL"] == "redis://redis:6379/0"
    for dependency in ("postgres", "redis"):
        assert SERVICES[dependency]["healthcheck"]["test"]


def test_the_balancer_round_robins_the_replicas_and_streams_unbuffered() -> None:
    lb = SERVICES["lb"]
    assert lb["ports"] == [f"{PORT}:8080"]
    config = (ROOT / "deploy" / "compose" / "nginx.conf").read_text()
    assert re.search(rf"server gateway:{PORT} resolve", config)
    assert "proxy_buffering off;" in config and "non_idempotent" not in config
    assert "proxy_set_header Host $http_host;" in config  # the console's same-origin check needs the port


def test_the_replicas_count_failed_logins_per_client_behind_the_balancer() -> None:
    config = (ROOT / "deploy" / "compose" / "nginx.conf").read_text()
    # nginx is the edge: it replaces X-Forwarded-For (a client cannot slip a forged hop in front of it) ...
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in config
    assert "$proxy_add_x_forwarded_for" not in config
    # ... and the replicas believe it from the addresses Docker gives the Compose network.
    listed = SERVICES["gateway"]["environment"]["CALCIFER_TRUSTED_PROXIES"]
    proxies = Settings.from_env({"CALCIFER_TRUSTED_PROXIES": listed}).trusted_proxies
    assert trusted("172.18.0.3", proxies) and trusted("192.168.16.2", proxies)
    assert not trusted("203.0.113.7", proxies)


def test_observability_is_a_profile_with_the_dashboard() -> None:
    prometheus, grafana = SERVICES["prometheus"], SERVICES["grafana"]
    assert prometheus["profiles"] == ["observability"] == grafana["profiles"]
    scrape = yaml.safe_load((ROOT / "deploy" / "compose" / "prometheus.yml").read_text())["scrape_configs"][0]
    assert scrape["dns_sd_configs"][0] == {
        "names": ["gateway"],
        "type": "A",
        "port": PORT,
        "refresh_interval": "15s",
    }
    mounts = [volume.split(":")[0] for volume in grafana["volumes"]]
    assert "./deploy/grafana/calcifer.json" in mounts
    for mount in mounts:
        if mount.startswith("./deploy/compose/"):
            assert (ROOT / mount).is_file()


def test_only_calcifer_settings_and_no_secret_written_down() -> None:
    known = known_env_names()
    for name in ("migrate", "gateway"):
        environment = SERVICES[name]["environment"]
        assert set(environment) <= known, set(environment) - known
        for key, value in environment.items():
            assert not inlined_secret(key, value), key
    assert SERVICES["gateway"]["environment"]["CALCIFER_MASTER_KEY"].startswith("${CALCIFER_MASTER_KEY:?")


def test_the_secret_check_catches_what_it_must() -> None:
    assert inlined_secret("CALCIFER_MASTER_KEY", "mk-0123456789abcdefghijklmn")
    assert inlined_secret("CALCIFER_DATABASE_URL", "postgresql://calcifer:hunter2@db:5432/calcifer")
    assert not inlined_secret("CALCIFER_DATABASE_URL", "postgresql://calcifer@db:5432/calcifer")
    assert not inlined_secret("OPENAI_API_KEY", "${OPENAI_API_KEY:-}")
    assert not inlined_secret("CALCIFER_MIGRATE", "off")
