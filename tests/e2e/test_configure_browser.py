"""The Configure tab in a real Chromium: dataset and preset pickers, the pre-flight panel, inline checks."""

import pytest
from playwright.sync_api import Page, expect

from browser_page import SCREENSHOTS, page  # noqa: F401 - the shared browser fixture

pytestmark = pytest.mark.e2e


def pick(page: Page, dropdown_id: str, option: str) -> None:
    page.locator(f"#{dropdown_id} input").click()
    page.get_by_role("option", name=option).click()


def test_configure_shows_the_preflight_estimate_for_the_quick_demo(page: Page):
    page.get_by_role("tab", name="Configure").click()
    panel = page.locator("#preflight-panel")
    expect(panel).to_contain_text("Trainable parameters", timeout=30_000)

    pick(page, "cfg-data-train-path", "Demo: clinic patient FAQ (zh/en) · v1 (upload) · 349 conversations")
    pick(page, "cfg-preset", "Quick demo (CPU)")
    # Quick demo: r=8 on q_proj (576→576) and v_proj (576→192) in 30 layers = 8·(1152 + 768)·30.
    expect(panel).to_contain_text("460,800 of 134,515,008", timeout=30_000)
    expect(panel).to_contain_text("Fits")
    expect(panel).to_contain_text("30 steps over 314 conversations")
    expect(page.locator("#config-yaml")).to_contain_text("max_steps: 30")
    expect(page.locator("#config-command")).to_contain_text("lora-studio train run.yaml")
    expect(page.locator("#config-checks")).to_contain_text("No problems found")
    page.screenshot(path=SCREENSHOTS / "configure.png")

    # An invalid combination is explained next to the form, and goes away when fixed.
    max_length = page.locator("#cfg-train-max-seq-length input")
    max_length.fill("9000")
    max_length.blur()
    checks = page.locator("#config-checks")
    expect(checks).to_contain_text("above what this model can read (8192 tokens)", timeout=20_000)
    max_length.fill("512")
    max_length.blur()
    expect(checks).to_contain_text("No problems found", timeout=20_000)
