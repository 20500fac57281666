"""The Configure and Train tabs in a real Chromium. Configure: the demo dataset and the Quick demo preset
on the built-in model, the pre-flight panel, inline checks. Train, on a tiny model so a run takes
seconds: start, watch the loss chart gain points, reload mid-run and re-attach, stop, resume with a
changed length and learning rate, finish, find the run in the history with its curves. The run gets a
million steps, so it is still running whenever the test acts on it, on any machine; the resume gives it
an end."""

import re

import pytest
from controls import pick, set_number
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e
STUDIO_TINY_MODEL = "tiny-llama"   # the `studio` fixture registers a tiny model under this name
STEPS = 1_000_000                  # ends only when stopped
MORE_STEPS = 5                     # after the resume
SLOW = 90_000


def choose_demo_data_and_quick_preset(page: Page) -> None:
    page.get_by_role("tab", name="Configure").click()
    expect(page.locator("#preflight-panel")).to_contain_text("Trainable parameters", timeout=30_000)
    pick(page, "cfg-data-train-path", "Demo: clinic patient FAQ (zh/en) · v1 (upload) · 349 conversations")
    pick(page, "cfg-preset", "Quick demo (CPU)")
    expect(page.locator("#config-yaml")).to_contain_text("max_steps: 30", timeout=20_000)


def test_configure_shows_the_preflight_estimate_for_the_quick_demo(page: Page, screenshot):
    choose_demo_data_and_quick_preset(page)
    panel = page.locator("#preflight-panel")
    # Quick demo: r=8 on q_proj (576→576) and v_proj (576→192) in 30 layers = 8·(1152 + 768)·30.
    expect(panel).to_contain_text("460,800 of 134,515,008", timeout=30_000)
    expect(panel).to_contain_text("Fits")
    expect(panel).to_contain_text("30 steps over 314 conversations")
    expect(page.locator("#config-command")).to_contain_text("lora-studio train run.yaml")
    expect(page.locator("#config-checks")).to_contain_text("No problems found")
    screenshot(page, "configure")

    # An invalid combination is explained next to the form, and goes away when fixed.
    checks = page.locator("#config-checks")
    set_number(page, "cfg-train-max-seq-length", 9000)
    expect(checks).to_contain_text("above what this model can read (8192 tokens)", timeout=20_000)
    set_number(page, "cfg-train-max-seq-length", 512)
    expect(checks).to_contain_text("No problems found", timeout=20_000)


def test_train_follows_a_run_through_reload_stop_resume_and_history(page: Page, screenshot):
    choose_demo_data_and_quick_preset(page)
    pick(page, "cfg-model-name", STUDIO_TINY_MODEL)
    set_number(page, "cfg-train-max-steps", STEPS)
    set_number(page, "cfg-train-max-seq-length", 256)
    expect(page.locator("#preflight-panel")).to_contain_text(f"{STEPS:,} steps", timeout=20_000)
    expect(page.locator("#config-checks")).to_contain_text("No problems found")

    page.get_by_role("tab", name="Train").click()
    page.locator("#train-start").click()
    banner = page.locator("#train-banner")
    points = page.locator("#train-loss-chart .scatterlayer .point")
    expect(banner).to_contain_text("Training", timeout=SLOW)
    expect(points.nth(2)).to_be_attached(timeout=SLOW)
    seen = points.count()
    expect(points.nth(seen)).to_be_attached(timeout=SLOW)   # the chart gains points as the run goes
    run_id = banner.locator("code").inner_text()

    page.locator("#train-start").click()   # a second run while one trains is refused, in words
    expect(page.get_by_text(f"The device is busy with training run '{run_id}'")).to_be_visible(timeout=20_000)

    page.reload()
    page.get_by_role("tab", name="Train").click()
    expect(banner).to_contain_text(run_id, timeout=30_000)
    expect(banner).to_contain_text("Training")
    expect(points.nth(seen)).to_be_attached(timeout=30_000)
    expect(page.locator("#train-progress")).to_contain_text(f"of {STEPS}")

    page.locator("#train-stop").click()
    expect(banner).to_contain_text("Stopped", timeout=SLOW)
    expect(page.locator("#train-resume")).to_be_enabled(timeout=SLOW)
    stopped_at = int(re.search(r"Step (\d+) of", page.locator("#train-progress").inner_text())[1])
    page.locator("#resume-settings").get_by_text("Resume with changed settings").click()
    expect(page.locator("#resume-max-steps input")).to_have_value(str(STEPS))
    set_number(page, "resume-max-steps", stopped_at + MORE_STEPS)
    set_number(page, "resume-learning-rate", 0.0001)
    page.wait_for_timeout(1000)   # a poll's last tick must not put the run's own values back over what was typed
    expect(page.locator("#resume-max-steps input")).to_have_value(str(stopped_at + MORE_STEPS))
    page.locator("#train-resume").click()
    expect(banner).to_contain_text("Finished", timeout=3 * SLOW)
    total = stopped_at + MORE_STEPS
    expect(page.locator("#train-progress")).to_contain_text(f"Step {total} of {total}")
    expect(page.locator("#train-log textarea")).to_have_value(re.compile("learning rate 0.0001"))
    expect(page.locator("#train-log textarea")).to_have_value(re.compile("Finished after"))
    screenshot(page, "train")

    table = page.locator("#runs-table")
    expect(table).to_contain_text(run_id)
    expect(table).to_contain_text("finished")
    pick(page, "history-compare", f"{run_id} (finished)")
    expect(page.locator("#history-compare-chart .scatterlayer .point").first).to_be_attached(timeout=20_000)
