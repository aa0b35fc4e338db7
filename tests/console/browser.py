"""Driving Debian's Chromium with Playwright: launch (or skip loudly), keyboard moves, axe-core checks,
screenshots saved as test artifacts (`build/console-screenshots/`, or `CALCIFER_ARTIFACTS`)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

ROOT = Path(__file__).parents[2]
AXE = ROOT / "tests" / "clients" / "axe-core" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = Path(os.environ.get("CALCIFER_ARTIFACTS", ROOT / "build")) / "console-screenshots"


def chromium_or_skip() -> str:
    """Debian's Chromium (`make browser` installs it); a loud skip without it, a failure in CI."""
    found = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    missing = [] if found else ["chromium (apt-get install chromium, or `make browser`)"]
    if not AXE.exists():
        missing.append(f"axe-core ({AXE.relative_to(ROOT)}: `make clients`)")
    if missing:
        message = "the console's browser tests did not run: missing " + " and ".join(missing)
        if os.environ.get("CALCIFER_REQUIRE_SERVICES"):
            pytest.fail(message)
        pytest.skip(message)
    assert found is not None
    return found


def tab_to(page: Page, selector: str, limit: int = 80) -> None:
    """Press Tab until the element `selector` names has the focus (it must be reachable by keyboard)."""
    for _ in range(limit):
        if page.evaluate("(s) => document.activeElement && document.activeElement.matches(s)", selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"{selector} cannot be reached with the Tab key")


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is."""
    page.add_script_tag(path=str(AXE))
    result: dict[str, Any] = page.evaluate("async () => await axe.run(document)")
    return [v for v in result["violations"] if v["impact"] in ("serious", "critical")]


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
