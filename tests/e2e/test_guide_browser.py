"""The first-run guide in a real Chromium on a fresh studio: it shows the path with Data to do first, a
step's button opens that step's tab, the glossary opens, and once hidden it stays hidden after a reload
(the browser keeps the choice) until "Show the guide" brings it back. Its screenshot is the README's."""

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e


def test_the_guide_leads_to_a_step_explains_words_and_stays_hidden_once_dismissed(page: Page, screenshot):
    guide, sentence = page.locator("#guide"), page.locator("#guide-next")
    expect(sentence).to_contain_text("Step 1 of 7 · Data", timeout=30_000)
    expect(sentence).to_contain_text("Save cleaned version")
    expect(page.locator("#guide-step-export")).to_have_text("7. Export")

    page.locator("#guide-step-configure").click()
    expect(page.get_by_role("tab", name="Configure")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#preflight-panel")).to_contain_text("Trainable parameters", timeout=30_000)
    expect(sentence).to_contain_text("Step 1 of 7 · Data")   # opening a tab does nothing in the workspace
    screenshot(page, "guide")

    page.locator("#guide-glossary").get_by_text("What do these words mean?").click()
    words = page.locator("#guide-glossary-text")
    expect(words).to_be_visible()
    expect(words).to_contain_text("LoRA")
    expect(words).to_contain_text("Perplexity")

    page.locator("#guide-hide").click()
    expect(guide).to_be_hidden()
    page.reload()
    expect(page.locator("#guide-show")).to_be_visible(timeout=30_000)   # the load event read the browser's memory
    expect(guide).to_be_hidden()
    expect(page.locator("#datasets-table")).to_contain_text("demo-clinic-faq", timeout=20_000)
    expect(guide).to_be_hidden()

    page.locator("#guide-show").click()
    expect(sentence).to_contain_text("Step 1 of 7 · Data", timeout=20_000)
    expect(guide).to_be_visible()
