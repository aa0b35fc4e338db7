"""`calcifer serve`: check the configuration, then start the gateway under uvicorn."""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import sys
import tempfile
from typing import Any

from calcifer.config.settings import ConfigError, Settings


def register(commands: Any) -> None:
    serve = commands.add_parser("serve", help="start the gateway")
    serve.add_argument("--host", help="address to bind (default SERVER_HOST or 0.0.0.0)")
    serve.add_argument("--port", type=int, help="port (default SERVER_PORT or 8080)")
    serve.add_argument("--workers", type=int, help="worker processes sharing the port (default 1)")
    serve.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    env = dict(os.environ)
    if args.port is not None:
        env["SERVER_PORT"] = str(args.port)
    if args.host is not None:
        env["SERVER_HOST"] = args.host
    if args.workers is not None:
        env["CALCIFER_WORKERS"] = str(args.workers)
    try:
        settings = Settings.from_env(env)
    except ConfigError as exc:
        print(f"calcifer: configuration error: {exc}", file=sys.stderr)
        return 2
    from calcifer.assembly.plugins import PluginError
    from calcifer.assembly.providers import assemble
    from calcifer.config.reader import ConfigFileError
    from calcifer.domain.errors import DuplicateModel, ModelNotFound
    from calcifer.observability.otel_env import otel_settings

    try:
        assemble(settings)  # fail fast on a bad config file, plugin or duplicate model, before serving
        otel_settings(env)  # and on an OTEL_* variable tracing cannot use
    except (ConfigFileError, PluginError, DuplicateModel, ValueError) as exc:
        print(f"calcifer: configuration error: {exc}", file=sys.stderr)
        return 2
    except ModelNotFound as exc:
        print(f"calcifer: configuration error: {exc.message}", file=sys.stderr)
        return 2
    os.environ.update({k: env[k] for k in ("SERVER_PORT", "SERVER_HOST", "CALCIFER_WORKERS") if k in env})
    import uvicorn

    from calcifer.observability.logging import configure_logging

    configure_logging(settings.log_level)
    metrics_dir = _metrics_dir(settings.workers)
    try:
        _serve(uvicorn, settings)
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _metrics_dir(workers: int) -> str | None:
    """With several workers, prometheus_client's multiprocess mode: every worker writes its metrics to
    files in one directory (`PROMETHEUS_MULTIPROC_DIR` if set, else a new temporary one, removed at exit)
    that a scrape merges. The directory is emptied first: files of an earlier run must not count."""
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        os.makedirs(given, exist_ok=True)
        for name in glob.glob(os.path.join(given, "*.db")):
            os.unlink(name)
        return None
    if workers <= 1:
        return None
    created = tempfile.mkdtemp(prefix="calcifer-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = created
    return created


def _serve(uvicorn: Any, settings: Settings) -> None:
    uvicorn.run(
        "calcifer.app:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers if settings.workers > 1 else None,
        loop="uvloop",
        http="calcifer.http.protocol:HeadJoiningProtocol",  # uvicorn's httptools, head and body in one write
        lifespan="on",
        access_log=False,
        log_config=None,
        timeout_keep_alive=max(1, int(settings.read_timeout)),
        timeout_graceful_shutdown=max(1, int(settings.shutdown_grace)),
        backlog=4096,
        proxy_headers=False,  # no X-Forwarded-* rewriting: it cost ~3% of a request's CPU
        server_header=False,
    )
