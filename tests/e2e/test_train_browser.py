"""The Configure → Train flow in a real Chromium, on a tiny model so a run takes seconds: start, watch the
loss chart gain points, reload mid-run and re-attach, stop, resume, finish, find it in the history."""

import re

import pytest
from playwright.sync_api import Page, expect

from browser_page import SCREENSHOTS, page  # noqa: F401 - the shared browser fixture

pytestmark = pytest.mark.e2e
STUDIO_TINY_MODEL = "tiny-llama"   # the `studio` fixture registers a tiny model under this name
STEPS = 120                        # long enough to reload and stop mid-run, short enough to finish soon
SLOW = 90_000


def pick(page: Page, dropdown_id: str, option: str) -> None:
    page.locator(f"#{dropdown_id} input").click()
    page.get_by_role("option", name=option).click()


def set_number(page: Page, elem_id: str, value: int) -> None:
    box = page.locator(f"#{elem_id} input")
    box.fill(str(value))
    box.blur()


def test_train_follows_a_run_through_reload_stop_resume_and_history(page: Page):
    page.get_by_role("tab", name="Configure").click()
    panel = page.locator("#preflight-panel")
    expect(panel).to_contain_text("Trainable parameters", timeout=30_000)
    pick(page, "cfg-data-train-path", "Demo: clinic patient FAQ (zh/en) · v1 (upload) · 349 conversations")
    pick(page, "cfg-preset", "Quick demo (CPU)")
    expect(page.locator("#config-yaml")).to_contain_text("max_steps: 30", timeout=20_000)
    pick(page, "cfg-model-name", STUDIO_TINY_MODEL)
    set_number(page, "cfg-train-max-steps", STEPS)
    set_number(page, "cfg-train-max-seq-length", 256)
    expect(page.locator("#config-yaml")).to_contain_text(f"max_steps: {STEPS}", timeout=20_000)
    expect(panel).to_contain_text(f"{STEPS} steps")
    expect(page.locator("#config-checks")).to_contain_text("No problems found")

    page.get_by_role("tab", name="Train").click()
    page.locator("#train-start").click()
    banner = page.locator("#train-banner")
    expect(banner).to_contain_text("Training", timeout=SLOW)
    expect(page.locator("#train-loss-chart .scatterlayer .point").nth(2)).to_be_attached(timeout=SLOW)
    seen = page.locator("#train-loss-chart .scatterlayer .point").count()
    expect(page.locator("#train-loss-chart .scatterlayer .point").nth(seen)).to_be_attached(timeout=SLOW)
    run_id = banner.locator("code").inner_text()

    page.locator("#train-start").click()   # a second run while one trains is refused, in words
    expect(page.get_by_text("is training. Wait until it ends, or stop it first.")).to_be_visible(timeout=20_000)

    page.reload()
    page.get_by_role("tab", name="Train").click()
    expect(banner).to_contain_text(run_id, timeout=30_000)
    expect(banner).to_contain_text("Training")
    expect(page.locator("#train-loss-chart .scatterlayer .point").nth(seen)).to_be_attached(timeout=30_000)
    expect(page.locator("#train-progress")).to_contain_text(f"of {STEPS}")

    page.locator("#train-stop").click()
    expect(banner).to_contain_text("Stopped", timeout=SLOW)   # "Finished" here would mean STEPS is too low
    expect(page.locator("#train-resume")).to_be_enabled()
    page.locator("#train-resume").click()
    expect(banner).to_contain_text("Finished", timeout=3 * SLOW)
    expect(page.locator("#train-progress")).to_contain_text(f"Step {STEPS} of {STEPS}")
    expect(page.locator("#train-log textarea")).to_have_value(re.compile("Finished after"))
    page.screenshot(path=SCREENSHOTS / "train.png")

    table = page.locator("#runs-table")
    expect(table).to_contain_text(run_id)
    expect(table).to_contain_text("finished")
    pick(page, "history-compare", f"{run_id} (finished)")
    expect(page.locator("#history-compare-chart .scatterlayer .point").first).to_be_attached(timeout=20_000)
