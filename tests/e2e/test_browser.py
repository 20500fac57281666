"""A real Chromium (Debian's, driven by Playwright) against the real app and the real default model.
Its screenshot (build/screenshots/chat.png) becomes the README picture with `make screenshots`."""

import time

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e


def bot_text(page: Page) -> str:
    bubbles = page.locator("#chat-history [data-testid=bot]")
    return bubbles.last.inner_text() if bubbles.count() else ""


def test_chat_streams_a_reply_from_the_default_model(page: Page, screenshot):
    page.get_by_role("tab", name="Data").wait_for()
    expect(page.locator("#datasets-table")).to_contain_text("demo-clinic-faq", timeout=20_000)

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
    screenshot(page, "chat")
