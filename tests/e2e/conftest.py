"""The browser every e2e test drives: Debian's Chromium through Playwright, against the `studio` fixture,
failing the test if the page calls any host other than 127.0.0.1.

Screenshots go to build/screenshots/ (never into tracked files); `make screenshots` copies the latest
ones into docs/screenshots/, the README's pictures. Without Chromium the browser tests are skipped with
a loud reason, except under CI=true, where the set-up installs it and its absence is a failure.
"""

import os
from pathlib import Path
from urllib.parse import urlparse

import pytest

SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
MISSING = ("Debian's chromium is not installed (/usr/bin/chromium), so the browser tests cannot run. "
           "Install it with `apt-get install chromium` (the README's test command does this as root).")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if Path(CHROMIUM).exists() or os.environ.get("CI") == "true":
        return
    for item in items:
        if "page" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.skip(reason=MISSING))


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if not Path(CHROMIUM).exists():
        terminalreporter.write_sep("!", "BROWSER TESTS SKIPPED: " + MISSING, red=True, bold=True)


@pytest.fixture
def screenshot():
    """Save a screenshot of the page under build/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page, name: str, full_page: bool = False) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=path, full_page=full_page)
        return path
    return take


@pytest.fixture
def page(studio, request: pytest.FixtureRequest):
    """A page on the studio; a test module's BROWSER_LOCALE (e.g. "zh-CN") is the language the browser asks for."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(MISSING)   # only reached under CI=true
    outside: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        context = browser.new_context(viewport={"width": 1280, "height": 860},
                                      locale=getattr(request.module, "BROWSER_LOCALE", "en-US"))
        page = context.new_page()
        page.on("request", lambda request: outside.append(request.url)
                if urlparse(request.url).hostname not in ("127.0.0.1", None) else None)
        page.goto(studio.url)
        yield page
        browser.close()
    assert outside == [], f"the page called hosts other than 127.0.0.1: {outside}"
