"""CPU time and RSS of a process tree, read from /proc."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from bench.procstat import PeakRss, descendants, sample

_BURN = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\ntime.sleep(30)"
_BURN_IN_CHILD = f"""
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", {_BURN!r}])
print("ready", flush=True)
time.sleep(30)
"""


def test_the_tree_includes_grandchildren_and_their_cpu_time() -> None:
    parent = subprocess.Popen([sys.executable, "-c", _BURN_IN_CHILD], stdout=subprocess.PIPE)
    try:
        assert parent.stdout is not None and parent.stdout.readline() == b"ready\n"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and sample(parent.pid).cpu_seconds < 0.3:
            time.sleep(0.05)
        tree = sample(parent.pid)
        assert len(descendants(parent.pid)) == 2 and tree.processes == 2
        assert tree.cpu_seconds >= 0.3  # the grandchild's busy loop counts
        assert tree.rss_bytes > 1_000_000 and tree.hwm_bytes >= tree.rss_bytes
    finally:
        for pid in reversed(descendants(parent.pid)):
            os.kill(pid, signal.SIGKILL)
        parent.wait()


def test_peak_rss_sees_memory_that_was_freed_again() -> None:
    code = (
        "import sys, time\nb = bytearray(80 * 2**20)\nprint('big', flush=True)\nsys.stdin.readline()\n"
        "del b\nprint('freed', flush=True)\ntime.sleep(30)"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert child.stdin is not None and child.stdout is not None
    try:
        assert child.stdout.readline() == b"big\n"
        with PeakRss(child.pid, interval=0.05) as peak:
            child.stdin.write(b"go\n")
            child.stdin.flush()
            assert child.stdout.readline() == b"freed\n"
        assert peak.peak >= 80 * 2**20
        assert peak.samples[-1] < 60 * 2**20
    finally:
        child.kill()
        child.wait()
