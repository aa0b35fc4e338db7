"""`calcifer serve` with CALCIFER_MIGRATE=off, as the manifests run it: it refuses an older schema and
names the command to run; after `calcifer migrate` it starts and serves."""

from __future__ import annotations

from pathlib import Path

import httpx2 as httpx
import pytest

from tests.e2e.process import GatewayProcess
from tests.e2e.test_commands import run


def test_serve_with_migrate_off_needs_calcifer_migrate_first(tmp_path: Path) -> None:
    env = {"CALCIFER_DATABASE_URL": f"sqlite:///{tmp_path}/c.db", "CALCIFER_MIGRATE": "off"}
    with pytest.raises(RuntimeError, match="exited early") as refused:
        GatewayProcess(env)
    assert "run `calcifer migrate` first" in str(refused.value)
    assert "pending: 0001" in str(refused.value)

    assert run("migrate", "--check", env=env).returncode == 1
    migrated = run("migrate", env=env)
    assert migrated.returncode == 0 and migrated.stdout.startswith("applied 0001"), migrated.stderr

    gateway = GatewayProcess(env)
    try:
        ready = httpx.get(gateway.url + "/health/ready", timeout=5)
        assert ready.status_code == 200 and ready.json()["checks"]["database"] == "ok"
    finally:
        gateway.stop()


def test_a_bad_migrate_setting_is_a_configuration_error(tmp_path: Path) -> None:
    env = {"CALCIFER_DATABASE_URL": f"sqlite:///{tmp_path}/c.db", "CALCIFER_MIGRATE": "sometimes"}
    refused = run("serve", env=env)
    assert refused.returncode == 2 and "CALCIFER_MIGRATE must be one of on, off" in refused.stderr
