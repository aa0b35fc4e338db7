"""The container image without a container engine: the Dockerfile's one install script, run here in a
fresh directory on exactly the files the Dockerfile copies, makes an environment in which the gateway
migrates and serves; and the Dockerfile keeps its promises (stages, non-root, health check, entry point)."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import httpx2 as httpx
import pytest

from tests.fakes.threaded import free_port

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
# The build stage's COPY sources: what the image is built from, and all the install script may use.
BUILD_STAGE = DOCKERFILE.split("\nFROM ", 2)[1]
COPIED = [src for line in re.findall(r"^COPY (.+)$", BUILD_STAGE, re.M) for src in line.split()[:-1]]


def _install_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("calcifer_install", ROOT / "deploy" / "install.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pinned(requirements: str) -> set[str]:
    return set(re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", requirements, re.M))


def test_the_image_gets_the_run_time_closure_of_the_lock_with_hashes() -> None:
    install = _install_module()
    lock = (ROOT / "requirements.lock").read_text()
    runtime = install.runtime_requirements(lock, (ROOT / "pyproject.toml").read_text())
    names = _pinned(runtime)
    assert {"starlette", "uvicorn", "alembic", "asyncpg", "redis", "sqlalchemy"} <= names
    assert "greenlet" in names and "mako" in names  # needed only through sqlalchemy[asyncio] and alembic
    assert not names & {"pytest", "mypy", "ruff", "playwright", "openai", "anthropic", "hypothesis"}
    assert names < _pinned(lock)
    for block in re.split(r"\n(?=[A-Za-z0-9])", runtime.strip()):
        assert "--hash=sha256:" in block, block  # every pin keeps its hashes (pip --require-hashes)


def test_a_dependency_missing_from_the_lock_stops_the_build() -> None:
    install = _install_module()
    pyproject = '[project]\ndependencies = ["starlette>=0.46", "left-pad>=1"]\n'
    with pytest.raises(SystemExit, match="no pin for left-pad"):
        install.runtime_requirements((ROOT / "requirements.lock").read_text(), pyproject)


def test_the_dockerfile_builds_in_two_stages_and_runs_unprivileged() -> None:
    assert len(re.findall(r"^FROM ", DOCKERFILE, re.M)) == 2
    assert "RUN python3 deploy/install.py --prefix /opt/calcifer --source /src" in BUILD_STAGE
    run_stage = DOCKERFILE.split("\nFROM ", 2)[2]
    assert "COPY --from=build /opt/calcifer /opt/calcifer" in run_stage
    user = re.findall(r"^USER (\S+)$", run_stage, re.M)
    assert user and user[-1].split(":")[0] not in ("0", "root")  # numeric: runAsNonRoot can verify it
    assert re.search(r"^HEALTHCHECK .*\n.*/health/live", run_stage, re.M)
    assert 'ENTRYPOINT ["calcifer"]' in run_stage and 'CMD ["serve"]' in run_stage
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignored[0] == "*" and {f"!{src}" for src in COPIED} <= set(ignored)


@pytest.mark.timeout(600)
def test_the_install_script_makes_an_environment_that_migrates_and_serves(tmp_path: Path) -> None:
    source = tmp_path / "src"
    for name in COPIED:
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, target)
    prefix = tmp_path / "opt" / "calcifer"
    built = subprocess.run(
        [
            sys.executable,
            str(source / "deploy" / "install.py"),
            "--prefix",
            str(prefix),
            "--source",
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    assert "usage: calcifer" in built.stdout
    python = prefix / "bin" / "python"
    assert not (prefix / "bin" / "pip").exists()
    dev_only = subprocess.run([python, "-c", "import pytest"], capture_output=True, check=False)
    assert dev_only.returncode != 0  # the image has no test or lint tools

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CALCIFER_", "SERVER_"))}
    env.update(
        {
            "CALCIFER_DATABASE_URL": f"sqlite:///{tmp_path}/data/calcifer.db",
            "CALCIFER_MIGRATE": "off",
            "SERVER_PORT": str(port),
            "XDG_CACHE_HOME": str(tmp_path / "cache"),
        }
    )
    calcifer = prefix / "bin" / "calcifer"
    installed = _tree(prefix)
    migrated = subprocess.run([calcifer, "migrate"], env=env, capture_output=True, text=True, check=False)
    assert migrated.returncode == 0 and migrated.stdout.startswith("applied 0001"), migrated.stderr
    server = subprocess.Popen([calcifer, "serve"], env=env, cwd=tmp_path, stdout=subprocess.DEVNULL)
    try:
        assert _live(f"http://127.0.0.1:{port}/health/live", server)
        answer = httpx.post(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            json={"model": "echo4", "messages": [{"role": "user", "content": "from the image"}]},
            timeout=10,
        )
        assert answer.status_code == 200 and answer.json()["usage"]["cost"] > 0
    finally:
        server.terminate()
        server.wait(30)
    # Running wrote nothing into the installed tree (no bytecode, no caches): a read-only root is enough.
    assert _tree(prefix) == installed


def _tree(root: Path) -> dict[str, int]:
    return {str(path.relative_to(root)): path.stat().st_mtime_ns for path in root.rglob("*")}


def _live(url: str, server: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and server.poll() is None:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return True
        except httpx.TransportError:
            time.sleep(0.1)
    return False
