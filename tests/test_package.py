"""The package tree's own rules: small modules, and one name per module (no shims re-exporting old paths)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import calcifer

PACKAGE = Path(calcifer.__file__).parent
MAX_LINES = 400


def test_no_module_is_over_400_lines() -> None:
    long = {
        str(path.relative_to(PACKAGE)): n
        for path in PACKAGE.rglob("*.py")
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


def test_the_top_level_holds_only_the_composition_root_and_entry_points() -> None:
    loose = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert loose == ["__init__.py", "__main__.py", "app.py"]


def test_importing_the_app_loads_each_module_under_one_name() -> None:
    script = (
        "import sys, calcifer.app\n"
        "seen = {}\n"
        "for name, module in list(sys.modules.items()):\n"
        "    path = getattr(module, '__file__', None)\n"
        "    if name.startswith('calcifer') and path:\n"
        "        seen.setdefault(path, []).append(name)\n"
        "print(sum(1 for names in seen.values() if len(names) > 1), len(seen))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    twice, loaded = (int(n) for n in out.stdout.split())
    assert loaded > 30 and twice == 0
