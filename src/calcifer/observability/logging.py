"""JSON log lines: one access line per request, and the gateway's own warnings, on stdout."""

from __future__ import annotations

import logging
import sys
import time

import orjson

ACCESS = logging.getLogger("calcifer.access")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        if isinstance(record.msg, dict):
            return orjson.dumps(record.msg).decode()
        line: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + "Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and record.exc_info[0] is not None:
            line["error"] = record.exc_info[0].__name__
        return orjson.dumps(line).decode()


def configure_logging(level: str) -> None:
    """Send calcifer's and the server's logs to stdout as JSON lines (idempotent)."""
    root = logging.getLogger()
    if any(getattr(h, "_calcifer", False) for h in root.handlers):
        root.setLevel(level.upper())
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    handler._calcifer = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())


def access_line(fields: dict[str, object]) -> None:
    if ACCESS.isEnabledFor(logging.INFO):
        ACCESS.info(fields)
