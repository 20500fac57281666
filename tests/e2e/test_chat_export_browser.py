"""A real Chromium against the real studio holding two runs that memorised different answers: chat with a
tuned run, switch to the other between messages, answer side by side, export a merged model and
download an adapter zip. Screenshots: build/screenshots/chat-side-by-side.png and export.png."""

import re
import zipfile
from pathlib import Path

import pytest
from controls import pick
from playwright.sync_api import Page, expect
from support import MEMORISED, QUESTIONS

pytestmark = pytest.mark.e2e
STUDIO_MEMORISED_RUNS = True
SLOW = 120_000   # ms: a reply or an export on a busy two-core machine


def send(page: Page, text: str) -> None:
    page.locator("#chat-input textarea").fill(text)
    page.get_by_role("button", name="Send").click()


def last_reply(page: Page, chatbot: str = "chat-history"):
    return page.locator(f"#{chatbot} [data-testid=bot]").last


def settled_text(page: Page, quiet_ms: int = 1000, within_ms: int = 10_000) -> str:
    """The last reply once it has not changed for `quiet_ms` (a streaming reply changes several times a second)."""
    text, waited = last_reply(page).inner_text(), 0
    while waited < within_ms:
        page.wait_for_timeout(quiet_ms)
        waited += quiet_ms
        now = last_reply(page).inner_text()
        if now == text:
            return now
        text = now
    raise AssertionError(f"the reply kept growing for {within_ms} ms after Stop: {text[-200:]}")


def test_chat_with_runs_side_by_side_then_export_and_download(page: Page, screenshot, tmp_path: Path):
    # The page's load events pick the first tab the user's role sees: let them finish before leaving Data.
    expect(page.locator("#datasets-table")).to_contain_text("demo-clinic-faq", timeout=20_000)
    page.get_by_role("tab", name="Chat").click()
    pick(page, "chat-model", "Run 'clinic'")
    page.locator("#chat-settings").get_by_text("Reply settings").click()
    expect(page.locator("#chat-temperature input[type=number]")).to_have_value("0")   # the run's own settings
    send(page, QUESTIONS[0])
    expect(last_reply(page)).to_have_text(MEMORISED["clinic"], timeout=SLOW)
    expect(page.locator("#chat-stats")).to_contain_text(re.compile(r"First token after \d+\.\d\d s"))

    pick(page, "chat-model", "Run 'garage'")   # the same conversation goes on with the other adapter
    send(page, QUESTIONS[1])
    expect(last_reply(page)).to_have_text(MEMORISED["garage"], timeout=SLOW)
    expect(page.locator("#chat-history [data-testid=bot]")).to_have_count(2)

    page.get_by_role("button", name="New conversation").click()
    page.locator("#chat-side-by-side input").check()
    pick(page, "chat-model", "Run 'clinic'")
    pick(page, "chat-model-b", "Run 'garage'")
    send(page, QUESTIONS[2])
    expect(last_reply(page)).to_have_text(MEMORISED["clinic"], timeout=SLOW)
    expect(last_reply(page, "chat-history-b")).to_have_text(MEMORISED["garage"], timeout=SLOW)
    expect(page.locator("#chat-stats-b")).to_contain_text("tokens")
    screenshot(page, "chat-side-by-side")

    # Stop ends a long reply and frees the device: the next message is answered.
    page.locator("#chat-side-by-side input").uncheck()
    page.get_by_role("button", name="New conversation").click()
    expect(page.locator("#chat-history [data-testid=bot]")).to_have_count(0)
    pick(page, "chat-model", "SmolLM2")
    send(page, "Tell me a very long story about the sea, with many chapters.")
    expect(last_reply(page)).to_have_text(re.compile(r"\w+\s+\w+\s+\w+"), timeout=SLOW)
    page.get_by_role("button", name="Stop").click()
    stopped = settled_text(page)   # a token already on its way when Stop was pressed may still land
    page.wait_for_timeout(3000)
    assert last_reply(page).inner_text() == stopped, "the reply went on after Stop"
    page.get_by_role("button", name="New conversation").click()
    pick(page, "chat-model", "Run 'clinic'")
    send(page, QUESTIONS[3])
    expect(last_reply(page)).to_have_text(MEMORISED["clinic"], timeout=SLOW)

    page.get_by_role("tab", name="Export").click()
    pick(page, "export-run", "clinic")
    pick(page, "export-format", "Merged model")
    page.get_by_role("button", name="Export", exact=True).click()
    expect(page.locator("#export-banner")).to_contain_text("✓ Done", timeout=SLOW)
    expect(page.locator("#export-banner")).to_contain_text("logits within")
    expect(page.locator("#exports-table")).to_contain_text("✓ complete")

    pick(page, "export-format", "Adapter only")
    page.locator("#export-name input, #export-name textarea").first.fill("clinic adapter")
    page.get_by_role("button", name="Export", exact=True).click()
    expect(page.locator("#export-banner")).to_contain_text("zip of", timeout=SLOW)
    pick(page, "export-picked", "clinic-adapter")
    with page.expect_download() as downloading:
        page.get_by_role("button", name="Download adapter (zip)").click()
    saved = tmp_path / downloading.value.suggested_filename
    downloading.value.save_as(saved)
    with zipfile.ZipFile(saved) as packed:
        assert "clinic-adapter/adapter_model.safetensors" in packed.namelist()
    page.locator("#export-card-section").get_by_text("Model card").click()
    expect(page.locator("#export-card")).to_contain_text("How this export was checked")
    screenshot(page, "export", full_page=True)
