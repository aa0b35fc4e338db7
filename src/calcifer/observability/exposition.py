"""`/metrics` in Prometheus' text format: this process's registry, or with `--workers N` (prometheus_client's
multiprocess mode, `PROMETHEUS_MULTIPROC_DIR`) every worker's files merged.

Workers that died leave files behind. Before each merge the files of processes that no longer exist are
folded: their counters and histograms are added into one `*_archive.db` file per type (so no count is
lost and totals never go backwards) and their gauges are deleted; the directory therefore holds one set
of files per live worker plus the archive, however often workers are replaced.
"""

from __future__ import annotations

import fcntl
import glob
import hmac
import os
from collections import defaultdict

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST


def multiprocess_dir() -> str | None:
    """The directory of multiprocess mode, when this process runs in it."""
    return os.environ.get(MULTIPROC_ENV) or None


def render(registry: CollectorRegistry) -> bytes:
    """The exposition of `registry`, or of every worker's files in multiprocess mode."""
    path = multiprocess_dir()
    if path is None:
        return generate_latest(registry)
    with open(os.path.join(path, ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one scrape at a time folds and reads the files
        fold_dead(path)
        merged = CollectorRegistry(auto_describe=False)
        MultiProcessCollector(merged, path)  # type: ignore[no-untyped-call]
        return generate_latest(merged)


def fold_dead(path: str) -> list[int]:
    """Fold the files of processes that are gone into the archive (see the module); the pids folded."""
    dead: dict[int, list[str]] = defaultdict(list)
    for name in glob.glob(os.path.join(path, "*.db")):
        pid = _pid(name)
        if pid is not None and not _alive(pid):
            dead[pid].append(name)
    for files in dead.values():
        for name in files:
            kind = os.path.basename(name).split("_", 1)[0]
            if kind in ("counter", "histogram"):
                _add_into(os.path.join(path, f"{kind}_archive.db"), name)
            os.unlink(name)
    return sorted(dead)


def _add_into(archive: str, name: str) -> None:
    # prometheus_client's file format, through its own (untyped) reader and writer.
    values = MmapedDict.read_all_values_from_file(name)  # type: ignore[no-untyped-call]
    target = MmapedDict(archive)  # type: ignore[no-untyped-call]
    try:
        for key, value, _timestamp, _position in values:
            if value:
                total, _ = target.read_value(key)  # type: ignore[no-untyped-call]
                target.write_value(key, total + value, 0.0)  # type: ignore[no-untyped-call]
    finally:
        target.close()  # type: ignore[no-untyped-call]


def _pid(name: str) -> int | None:
    tail = os.path.basename(name)[:-3].rsplit("_", 1)[-1]
    return int(tail) if tail.isdigit() else None


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def authorized(expected: str | None, authorization: str | None) -> bool:
    """Whether a scrape may read the metrics: always without a token, else with `Bearer <token>`."""
    if expected is None:
        return True
    if authorization is None or authorization[:7].lower() != "bearer ":
        return False
    return hmac.compare_digest(authorization[7:].strip().encode(), expected.encode())
