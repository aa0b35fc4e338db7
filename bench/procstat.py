"""CPU time and memory of a process and its descendants, from /proc (Linux only)."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class TreeSample:
    cpu_seconds: float  # utime + stime of the live tree, plus what its reaped children used
    rss_bytes: int  # sum of VmRSS over the tree
    hwm_bytes: int  # sum of VmHWM (each process's peak RSS) over the tree
    processes: int


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after its last ')'
    return raw[raw.rindex(")") + 2 :].split()


def descendants(root: int) -> list[int]:
    """`root` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, ()))
    return tree


def _status_kib(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        return 0
    return 0


def sample(root: int) -> TreeSample:
    """One reading of the tree under `root` (after the name: 11,12 = utime,stime; 13,14 = cutime,cstime)."""
    cpu_ticks = rss = hwm = count = 0
    for pid in descendants(root):
        fields = _stat_fields(pid)
        if fields is None:
            continue
        count += 1
        # own time plus that of reaped children (a live process is never counted twice)
        cpu_ticks += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
        rss += _status_kib(pid, "VmRSS:")
        hwm += _status_kib(pid, "VmHWM:")
    return TreeSample(cpu_ticks / _TICKS, rss * 1024, hwm * 1024, count)


class PeakRss:
    """Samples the tree's total VmRSS in a background thread and keeps the highest value."""

    def __init__(self, root: int, interval: float = 0.5) -> None:
        self._pids = descendants(root)
        self._interval = interval
        self._stop = threading.Event()
        self.peak = self._rss()
        self.samples: list[int] = [self.peak]
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _rss(self) -> int:
        return sum(_status_kib(pid, "VmRSS:") for pid in self._pids) * 1024

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            rss = self._rss()
            self.samples.append(rss)
            self.peak = max(self.peak, rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        rss = self._rss()
        self.samples.append(rss)
        self.peak = max(self.peak, rss)
