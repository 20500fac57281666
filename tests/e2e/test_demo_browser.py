"""The Demo tab in a real Chromium against the real studio holding two runs that memorised different answers:
the newest run's headline, its evaluation against the base, the loss chart, and one question answered by the
base model and the tuned run side by side. Screenshot: build/screenshots/demo.png."""

import pytest
from playwright.sync_api import Page, expect
from support import MEMORISED, QUESTIONS, evaluate_memorised

from core.runs import records
from core.workspace import Workspace

pytestmark = pytest.mark.e2e
STUDIO_MEMORISED_RUNS = True
SLOW = 120_000   # ms: a reply on a busy two-core machine


def test_a_stakeholder_sees_the_newest_runs_numbers_and_both_models_answer(page: Page, screenshot, studio):
    workspace = Workspace.open(studio.workspace)
    newest = records.list_runs(workspace)[0]
    evaluate_memorised(workspace, newest.run_id, MEMORISED[newest.name])
    page.reload()   # the page loaded before the evaluation existed
    # The page's load events pick the first tab the user's role sees: let them finish before leaving Data.
    expect(page.locator("#datasets-table")).to_contain_text("demo-clinic-faq", timeout=20_000)
    page.get_by_role("tab", name="Demo").click()

    headline = page.locator("#demo-headline")
    expect(headline).to_contain_text(newest.name, timeout=SLOW)
    expect(headline).to_contain_text("Training time")
    expect(headline).to_contain_text("Best validation loss")
    expect(page.locator("#demo-loss .scatterlayer .point").first).to_be_visible(timeout=SLOW)
    expect(page.locator("#demo-evaluation")).to_contain_text("before and after fine-tuning")
    expect(page.locator("#demo-evaluation table")).to_contain_text("chrF")
    expect(page.locator("#demo-evaluation table")).to_contain_text("95% CI")
    expect(page.locator("#demo-ratings")).to_contain_text("No one has rated this run's answers yet")

    page.locator("#demo-input textarea").fill(QUESTIONS[0])
    page.get_by_role("button", name="Ask both").click()
    tuned = page.locator("#demo-tuned [data-testid=bot]").last
    base = page.locator("#demo-base [data-testid=bot]").last
    expect(tuned).to_have_text(MEMORISED[newest.name], timeout=SLOW)
    expect(base).not_to_have_text("…", timeout=SLOW)
    expect(base).not_to_have_text(MEMORISED[newest.name])
    expect(page.locator("#demo-base [data-testid=user]")).to_have_text(QUESTIONS[0])
    screenshot(page, "demo", full_page=True)
