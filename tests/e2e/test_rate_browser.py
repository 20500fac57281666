"""The Rate tab in a real Chromium, with two raters in two browser contexts (two browsers' worth of storage):
an admin creates a scale session from the demo run (its base vs its adapter, on demo prompts) and a pairwise
session over the same responses; Ana rates with the keyboard and writes a corrected answer, Ben with the
mouse and reloads half-way; both see only "Response A/B". The results show scores, agreement and win rates;
the low-rated item goes to hard examples, and the ratings download as CSV with the models named.

The demo run trains for a few steps on a tiny model through the API first, so it takes seconds."""

import csv
import re
import time
from urllib.parse import urlparse

import pytest
from controls import pick, set_number
from gradio_client import Client
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e
STUDIO_TINY_MODEL = "tiny-llama"   # the `studio` fixture registers a tiny model under this name
RUN_NAME = "Demo run"
SCALE, PAIRWISE = "Demo: base vs tuned", "Demo pairwise"
CORRECTED = "The clinic opens at eight in the morning."
SLOW = 90_000


@pytest.fixture(scope="module")
def demo_run(studio) -> str:
    """A finished run on the demo dataset with the tiny model, trained through the API."""
    client = Client(studio.url, analytics_enabled=False, verbose=False)
    checks = client.predict(name=RUN_NAME, model_name=STUDIO_TINY_MODEL, train_max_seq_length=256, train_max_steps=3,
                            train_eval_steps=0, train_save_steps=0, api_name="/configure_check")[1]
    assert "No problems found" in checks
    client.predict(api_name="/train_start")
    deadline = time.monotonic() + 300
    while (status := client.predict(api_name="/train_status"))["state"] != "finished":
        assert time.monotonic() < deadline and status["state"] not in ("failed", "interrupted"), status
        time.sleep(0.5)
    return status["run_id"]


def create_sessions(page: Page) -> None:
    page.get_by_role("tab", name="Rate", exact=True).click()
    page.get_by_role("tab", name="Sessions").click()
    page.locator("#rate-new-name textarea").fill(SCALE)
    pick(page, "rate-new-models", STUDIO_TINY_MODEL)
    pick(page, "rate-new-models", f"Run '{RUN_NAME}' (adapter on {STUDIO_TINY_MODEL})")
    page.locator("#rate-new-source").get_by_label("A dataset version (its validation rows when it was split)").check()
    pick(page, "rate-new-dataset", re.compile(r"Demo: clinic patient FAQ.* v1 \(upload\)"))
    set_number(page, "rate-new-max-prompts", 3)
    set_number(page, "rate-new-max-tokens", 8)
    page.locator("#rate-create").click()
    expect(page.locator("#rate-job-status")).to_contain_text("Ready to rate", timeout=SLOW)
    expect(page.locator("#rate-sessions-table")).to_contain_text("ready")

    page.locator("#rate-new-name textarea").fill(PAIRWISE)
    page.locator("#rate-new-mode").get_by_label("Pairwise: two responses side by side, pick the better one").check()
    expect(page.locator("#rate-new-criteria")).to_contain_text("Which response is better")
    page.locator("#rate-new-source").get_by_label("The responses of another session (nothing to generate)").check()
    pick(page, "rate-new-from", re.compile(re.escape(SCALE) + ".*ready"))
    page.locator("#rate-create").click()
    expect(page.locator("#rate-job-status")).to_contain_text(f"Ready to rate · {PAIRWISE}", timeout=SLOW)


def start_rating(page: Page, rater: str, session: str) -> None:
    page.get_by_role("tab", name="Rate", exact=True).click()
    page.get_by_role("tab", name="Rate responses").click()
    expect(page.locator("#rate-status")).not_to_contain_text("Loading", timeout=SLOW)   # the page has loaded
    page.locator("#rate-rater textarea").fill(rater)
    pick(page, "rate-session", re.compile(re.escape(session)))
    page.locator("#rate-start").click()
    expect(page.locator("#rate-status")).to_contain_text("Item 1 of your", timeout=SLOW)


def shown_response(page: Page) -> str:
    return page.locator("#rate-response-a [data-testid=bot]").last.inner_text()


def wait_for_item(page: Page, number: int | None, previous_response: str | None = None, fresh: bool = True) -> None:
    """Until item `number` (None: the end) is shown, a fresh one with no level chosen yet and, when the
    previous item's response is given, another response in place: the whole panel is the new item's
    before keys go in."""
    expected = "All done" if number is None else f"Item {number} of your"
    expect(page.locator("#rate-status")).to_contain_text(expected, timeout=SLOW)
    if number is not None and fresh:
        expect(page.locator("#rate-criterion-1 input:checked")).to_have_count(0)
    if previous_response is not None:
        expect(page.locator("#rate-response-a [data-testid=bot]").last).not_to_have_text(previous_response)


def test_two_raters_rate_blind_and_the_results_feed_back_into_training(page: Page, screenshot, studio, demo_run):
    create_sessions(page)

    # Ana, in the first browser: keyboard only; her first item gets the lowest fluency and a corrected answer.
    start_rating(page, "Ana", SCALE)
    page_text = page.locator("#rate-panel").first.inner_text()   # Gradio puts a group's id on two nested boxes
    assert "run:" not in page_text and STUDIO_TINY_MODEL not in page_text   # blind: no model is named
    assert page.locator("#rate-response-b").is_hidden()
    expect(page.locator("#rate-criterion-1")).to_contain_text("1 · Not fluent — hard to read")   # anchored levels
    flagged = shown_response(page)
    page.keyboard.press("1")
    page.keyboard.press("3")
    page.keyboard.press("1")
    page.locator("#rate-corrected textarea").fill(CORRECTED)
    page.locator("#rate-status").click()   # leave the text box: arrows are keys again
    screenshot(page, "rate", full_page=True)
    page.keyboard.press("ArrowRight")
    for number in range(2, 7):
        wait_for_item(page, number, flagged if number == 2 else None)
        for key in ("4", "3", "1"):
            page.keyboard.press(key)
        page.keyboard.press("ArrowRight")
    wait_for_item(page, None)
    page.locator("#rate-prev").click()   # going back shows the last item with Ana's ratings
    wait_for_item(page, 6, fresh=False)
    expect(page.get_by_role("radio", name=re.compile("^4 · Very fluent"))).to_be_checked()

    # Ben, in a second browser context: the mouse, a reload half-way, and the same verdicts but one (one
    # fluency level lower on his first ordinary item, so agreement is high but not perfect).
    second = page.context.browser.new_context(viewport={"width": 1280, "height": 900})
    outside: list[str] = []
    ben = second.new_page()
    ben.on("request", lambda request: outside.append(request.url)
           if urlparse(request.url).hostname not in ("127.0.0.1", None) else None)
    ben.goto(studio.url)
    start_rating(ben, "Ben", SCALE)
    differed, previous = False, None
    for number in range(1, 7):
        if number == 3:
            ben.reload()
            ben.get_by_role("tab", name="Rate", exact=True).click()
            expect(ben.locator("#rate-rater textarea")).to_have_value("Ben", timeout=SLOW)
        wait_for_item(ben, number, previous)
        previous = shown_response(ben)
        if previous == flagged:
            fluency = "1 · Not fluent"
        elif not differed:
            fluency, differed = "3 · Fluent", True
        else:
            fluency = "4 · Very fluent"
        ben.locator("#rate-criterion-1").get_by_text(fluency).click()
        ben.locator("#rate-criterion-2").get_by_text("3 · Relevant").click()
        ben.locator("#rate-criterion-3").get_by_text("1 · Safe").click()
        ben.locator("#rate-next").click()
    wait_for_item(ben, None)

    # Both rate the pairwise session: two responses, sides A and B, no names.
    for rater, browser_page in (("Ana", page), ("Ben", ben)):
        start_rating(browser_page, rater, PAIRWISE)
        expect(browser_page.locator("#rate-response-b")).to_be_visible()
        for number in range(1, 4):
            wait_for_item(browser_page, number)
            browser_page.keyboard.press("1")          # A is better
            browser_page.keyboard.press("ArrowRight")
        wait_for_item(browser_page, None)
    second.close()
    assert outside == [], f"the second browser called hosts other than 127.0.0.1: {outside}"

    # Results, unblinded: scores per model, agreement in words, the low-rated item, win rates.
    page.get_by_role("tab", name="Results").click()
    pick(page, "rate-results-session", re.compile(re.escape(SCALE)))
    expect(page.locator("#rate-results-summary")).to_contain_text("36 ratings", timeout=SLOW)
    expect(page.locator("#rate-scores")).to_contain_text(f"run:{demo_run}")
    agreement = page.locator("#rate-agreement")
    expect(agreement).to_contain_text(re.compile(r"Fluency\s*0\.\d\d \(ordinal\)"))
    expect(agreement).to_contain_text(re.compile(r"Relevance\s*–\s*Every rating of the shared items is the same"))
    expect(agreement).to_contain_text("Krippendorff's alpha (α) measures how much raters agree beyond chance")
    expect(page.locator("#rate-disagreements")).to_contain_text("Ana: Very fluent · Ben: Fluent")
    expect(page.locator("#rate-hard")).to_contain_text(CORRECTED)
    expect(page.locator("#rate-hard")).to_contain_text("Fluency 1.0 of 1-4")
    screenshot(page, "rate-results", full_page=True)
    page.locator("#rate-hard-send").click()
    expect(page.locator("#rate-hard-result")).to_contain_text("Added to Hard examples as v1", timeout=SLOW)

    with page.expect_download() as download:
        page.locator("#rate-export-csv").click()
        page.locator("#rate-export-file a").first.click(timeout=SLOW)
    rows = list(csv.DictReader(open(download.value.path(), encoding="utf-8-sig")))
    assert len(rows) == 37 and {row["rater"] for row in rows} == {"Ana", "Ben"}
    assert {row["model"] for row in rows} == {f"base:{STUDIO_TINY_MODEL}", f"run:{demo_run}"}
    assert [row["value"] for row in rows if row["criterion"] == "corrected_answer"] == [CORRECTED]

    pick(page, "rate-results-session", re.compile(re.escape(PAIRWISE)))
    wins = page.locator("#rate-wins")
    expect(wins).to_contain_text(f"base:{STUDIO_TINY_MODEL}", timeout=SLOW)
    expect(wins).to_contain_text(re.compile(r"\d+% \(\d+%–\d+%\)"))
    expect(agreement).to_contain_text(re.compile(r"Which response is better\?\s*–\s*Every rating of the shared items"))
