"""A real Chromium (Debian's, driven by Playwright) against the real app and the real default model.
Screenshots land in docs/screenshots/ and are the README's pictures."""

import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
from playwright.sync_api import Page, expect, sync_playwright

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.e2e


@pytest.fixture
def page(studio):
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: run the README's test command, which installs it")
    outside: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        context = browser.new_context(viewport={"width": 1280, "height": 860})
        page = context.new_page()
        page.on("request", lambda request: outside.append(request.url)
                if urlparse(request.url).hostname not in ("127.0.0.1", None) else None)
        page.goto(studio.url)
        yield page
        browser.close()
    assert outside == [], f"the page called hosts other than 127.0.0.1: {outside}"


def bot_text(page: Page) -> str:
    bubbles = page.locator("#chat-history [data-testid=bot]")
    return bubbles.last.inner_text() if bubbles.count() else ""


def test_chat_streams_a_reply_from_the_default_model(page: Page):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.get_by_role("tab", name="Data").wait_for()
    expect(page.locator("#datasets-table")).to_contain_text("demo-clinic-faq", timeout=20_000)
    page.screenshot(path=SCREENSHOTS / "data.png")

    page.get_by_role("tab", name="Chat").click()
    page.locator("#chat-input textarea").fill("In two sentences, why should I wash my hands?")
    page.get_by_role("button", name="Send").click()

    # Record the reply as it grows: streaming shows several different partial texts before the end,
    # which is when the text has not changed for two seconds.
    seen: list[str] = []
    last_change = time.monotonic()
    deadline = last_change + 120
    while time.monotonic() < deadline:
        text = bot_text(page).strip()
        if text and text != "…" and (not seen or text != seen[-1]):
            seen.append(text)
            last_change = time.monotonic()
        if seen and time.monotonic() - last_change > 2:
            break
        time.sleep(0.05)
    final = bot_text(page).strip()
    assert len(final) > 20, f"no reply: {seen}"
    assert len(seen) >= 3, f"the reply did not stream: {seen}"
    assert all(final.startswith(partial[: len(partial) // 2]) for partial in seen)
    page.screenshot(path=SCREENSHOTS / "chat.png")
