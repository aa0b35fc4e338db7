"""JSON log lines on stdout: one access line per request, and the gateway's own messages.

Lines are written in batches, never one `write` per request: they are buffered and flushed together
at most 50 ms later (at once when no event loop runs, when the buffer grows large, and at exit), so
that logging stays off the response path.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import sys
import time

import orjson

ACCESS = logging.getLogger("calcifer.access")
_FLUSH_AFTER = 0.05
_FLUSH_BYTES = 64 * 1024


class LineWriter:
    """Buffers lines and writes them to a file descriptor in one call per batch."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._lines: list[bytes] = []
        self._size = 0
        self._scheduled = False

    def write(self, line: bytes) -> None:
        self._lines.append(line)
        self._size += len(line)
        if self._size >= _FLUSH_BYTES:
            self.flush()
            return
        if not self._scheduled:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._scheduled = True
            loop.call_later(_FLUSH_AFTER, self.flush)

    def flush(self) -> None:
        self._scheduled = False
        if not self._lines:
            return
        data = b"".join(self._lines)
        self._lines.clear()
        self._size = 0
        view = memoryview(data)
        while view:
            try:
                written = os.write(self.fd, view)
            except BlockingIOError:
                continue
            except OSError:
                return  # stdout is gone: nothing sensible to do with a log line
            view = view[written:]


_writer = LineWriter(sys.stdout.fileno() if hasattr(sys.stdout, "fileno") else 1)
atexit.register(_writer.flush)


class JsonHandler(logging.Handler):
    """Formats records as JSON lines into the shared batched writer."""

    _calcifer = True

    def emit(self, record: logging.LogRecord) -> None:
        if isinstance(record.msg, dict):
            _writer.write(orjson.dumps(record.msg) + b"\n")
            return
        line: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + "Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and record.exc_info[0] is not None:
            line["error"] = record.exc_info[0].__name__
        _writer.write(orjson.dumps(line) + b"\n")


def configure_logging(level: str) -> None:
    """Send calcifer's and the server's logs to stdout as JSON lines (idempotent)."""
    root = logging.getLogger()
    root.setLevel(level.upper())
    if not any(getattr(h, "_calcifer", False) for h in root.handlers):
        root.addHandler(JsonHandler())


def access_line(fields: dict[str, object]) -> None:
    if ACCESS.isEnabledFor(logging.INFO):
        _writer.write(orjson.dumps(fields) + b"\n")


def flush_logs() -> None:
    _writer.flush()
