"""The browser every e2e test drives: Debian's Chromium through Playwright, against the `studio` fixture,
failing the test if the page calls any host other than 127.0.0.1. Screenshots land in docs/screenshots/
and are the README's pictures."""

from pathlib import Path
from urllib.parse import urlparse

import pytest
from playwright.sync_api import sync_playwright

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"


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
