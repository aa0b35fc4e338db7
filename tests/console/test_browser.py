"""The console in a real browser (Playwright driving Debian's Chromium), by keyboard: log in, create a
key and see its secret once, send real requests through the gateway (echo4 and a fake OpenAI upstream),
see them in Requests and in the Overview (equal to /v1/spend), edit the budget and see a request
refused, revoke the key and see 401, log out. axe-core checks every page; screenshots are saved."""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal

import httpx2 as httpx
import orjson
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.console.browser import axe_violations, chromium_or_skip, screenshot, tab_to
from tests.console.conftest import MASTER, auth
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.threaded import AsgiServer
from tests.http.test_request_log import eventually


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    executable = chromium_or_skip()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def context(chromium: Browser, secured: AsgiServer) -> Iterator[BrowserContext]:
    # bypass_csp lets the test inject axe-core; the pages' own policy is checked over HTTP
    context = chromium.new_context(
        base_url=secured.url, bypass_csp=True, viewport={"width": 1280, "height": 900}
    )
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=secured.url)
    yield context
    context.close()


def check_page(page: Page, name: str) -> None:
    assert axe_violations(page) == [], name
    screenshot(page, name)


def chat(gateway: AsgiServer, key: str, model: str, request_id: str) -> httpx.Response:
    body = {"model": model, "max_tokens": 30, "messages": [{"role": "user", "content": "hello there"}]}
    headers = {**auth(key), "x-request-id": request_id}
    return httpx.post(gateway.url + "/v1/chat/completions", json=body, headers=headers, timeout=10)


def spend_total(gateway: AsgiServer) -> dict[str, object]:
    answer = httpx.get(gateway.url + "/v1/spend", params={"since": "1d"}, headers=auth())
    total: dict[str, object] = orjson.loads(answer.content)["total"]
    return total


def test_the_main_flow_by_keyboard(
    context: BrowserContext, secured: AsgiServer, fake_openai: FakeOpenAI
) -> None:
    page = context.new_page()
    page.goto("/ui")
    expect(page).to_have_url(re.compile(r"/ui/login\?next="))
    check_page(page, "01-login")
    page.keyboard.type(MASTER)  # the key field has the focus
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()

    tab_to(page, "a[href='/ui/keys']")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Keys", exact=True)).to_be_visible()
    tab_to(page, "#new-name")
    page.keyboard.type("checkout <script>alert(1)</script>")
    tab_to(page, "#new-budget")
    page.keyboard.type("5")
    tab_to(page, "#new-models")
    page.keyboard.type("echo4, gpt-4o-mini")
    page.keyboard.press("Enter")
    secret = page.locator("#secret").inner_text().strip()
    assert secret.startswith("sk-calc-")
    check_page(page, "02-key-created")
    tab_to(page, "button[data-copy]")
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == secret
    tab_to(page, "a[href^='/ui/keys/key_']")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name=re.compile("checkout"))).to_be_visible()
    assert secret not in page.content()  # shown once only
    key_url = page.url

    assert chat(secured, secret, "echo4", "browser-echo").status_code == 200
    assert chat(secured, secret, "gpt-4o-mini", "browser-openai").status_code == 200
    assert len(fake_openai.requests) == 1
    eventually(lambda: spend_total(secured)["requests"] == 2)

    page.goto("/ui/requests")
    expect(page.get_by_role("link", name="browser-openai")).to_be_visible()
    expect(page.get_by_role("link", name="browser-echo")).to_be_visible()
    check_page(page, "03-requests")
    tab_to(page, "a[href='/ui/requests/browser-openai']")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Request browser-openai")).to_be_visible()
    check_page(page, "04-request")

    page.goto("/ui")
    total = spend_total(secured)
    today = page.locator("[data-period='today'] dd.big")
    assert Decimal(today.get_attribute("data-cost") or "") == Decimal(str(total["cost"]))
    assert page.locator("[data-period='today'] [data-requests]").inner_text() == str(total["requests"])
    page.wait_for_function("document.querySelector('#daily-chart').width > 0")
    check_page(page, "05-overview")

    page.goto("/ui/spend?group_by=model&since=7d")
    expect(page.get_by_role("cell", name="gpt-4o-mini")).to_be_visible()
    check_page(page, "06-spend")
    with page.expect_download() as download:
        tab_to(page, "a[download]")
        page.keyboard.press("Enter")
    assert "gpt-4o-mini" in download.value.path().read_text()

    page.goto(key_url)
    check_page(page, "07-key")
    tab_to(page, "#edit-budget")
    page.keyboard.press("Control+a")
    page.keyboard.type("0.000001")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text("Saved.")
    refused = chat(secured, secret, "echo4", "browser-refused")
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "budget_exceeded"

    page.once("dialog", lambda dialog: dialog.accept())
    tab_to(page, "button.danger")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Keys", exact=True)).to_be_visible()
    assert chat(secured, secret, "echo4", "browser-revoked").status_code == 401

    page.goto("/ui/models")
    check_page(page, "08-models")

    tab_to(page, "form.logout button")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Log in to the console")).to_be_visible()
    page.goto("/ui")
    expect(page).to_have_url(re.compile(r"/ui/login"))
