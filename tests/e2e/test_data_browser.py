"""The Data tab in a real Chromium: upload a messy file, read the counts, resolve a contradiction, save
a version, restore a reject, look at lengths and the loss mask. Also prints how long a 20,000-row upload
takes to show its report (a figure for the README, not an assertion)."""

import json
import random
import time
from pathlib import Path

import pytest
from controls import page_drawn
from playwright.sync_api import Page, expect

from core.data.store import DEMO_DATASET_FILE

pytestmark = pytest.mark.e2e
SLOW = 60_000


def upload(page: Page, path: Path) -> None:
    page_drawn(page)
    page.get_by_role("tab", name="Data").click()
    page.locator("#ds-upload input[type=file]").set_input_files(str(path))


def test_upload_clean_resolve_and_save_a_version(page: Page, screenshot, studio, tmp_path: Path):
    messy = tmp_path / "messy clinic.jsonl"
    messy.write_bytes(DEMO_DATASET_FILE.read_bytes() + b'{"prompt": 42, "response": "x"}\nnot json at all\n')
    upload(page, messy)

    report = page.locator("#ds-upload-report")
    expect(report).to_contain_text("Read 351 rows", timeout=SLOW)
    expect(report).to_contain_text("line 350: field 'prompt' must be text, got a number (42)")
    expect(report).to_contain_text("line 351: invalid JSON")
    counts = page.locator("#ds-counts")
    expect(counts).to_contain_text("near duplicate", timeout=SLOW)
    expect(counts).to_contain_text("What cleaning would do to messy-clinic/v1", timeout=SLOW)
    expect(page.locator("#ds-group-view")).to_contain_text("Line 44")
    expect(page.locator("#ds-group-view")).to_contain_text("Line 62")
    expect(page.locator("#ds-groups-summary")).to_contain_text("3 contradiction group(s)")

    page.locator("#ds-group-choice").get_by_label("Keep line 44 only").check()
    expect(page.locator("#ds-groups-summary")).to_contain_text("c44 (lines 44, 62): keep line 44")
    page.locator("#ds-group input").click()
    page.get_by_role("option", name="c50: lines 50, 116").click()
    expect(page.locator("#ds-group-view")).to_contain_text("Line 116")
    page.locator("#ds-group-choice").get_by_label("Drop all").check()
    expect(page.locator("#ds-groups-summary")).to_contain_text("c50 (lines 50, 116): drop all")
    screenshot(page, "data", full_page=True)

    page.get_by_role("button", name="Save cleaned version").click()
    expect(page.locator("#ds-save-report")).to_contain_text("Saved v2", timeout=SLOW)
    expect(page.locator("#ds-version-summary")).to_contain_text("cleaned from v1", timeout=SLOW)
    folder = studio.workspace / "datasets" / "messy-clinic" / "v2"
    rejects = {row["source_line"]: row["reasons"] for row in map(json.loads, (folder / "rejects.jsonl").open())}
    assert rejects[62] == rejects[50] == rejects[116] == ["contradiction"] and 44 not in rejects
    assert rejects[350] == rejects[351] == ["invalid"] and rejects[33] == ["duplicate"]

    page.get_by_role("tab", name="Rejects").click()
    expect(page.locator("#ds-reject-info")).to_contain_text("of 22", timeout=SLOW)
    restore_lines = page.locator("#ds-restore-lines textarea")
    for _ in range(3):   # a click that lands while the freshly shown table is still rendering is lost
        page.locator("#ds-rejects").get_by_text("placeholder text ('TODO')").click()
        try:
            expect(restore_lines).to_have_value("84", timeout=3_000)
            break
        except AssertionError:
            continue
    expect(restore_lines).to_have_value("84")
    page.get_by_role("button", name="Restore into a new version").click()
    expect(page.locator("#ds-restore-report")).to_contain_text("Restored 1 row(s) into v3", timeout=SLOW)

    page.get_by_role("tab", name="Browse").click()
    expect(page.locator("#ds-sample-info")).to_contain_text("of 330", timeout=SLOW)
    page.get_by_role("button", name="Preview the template").click()
    preview = page.locator("#ds-template-preview")
    expect(preview.locator(".tok-trained").first).to_be_visible(timeout=SLOW)
    expect(preview).to_contain_text("trained")
    assert preview.locator(".tok-masked").count() > 0


def test_a_csv_upload_asks_for_its_columns(page: Page, tmp_path: Path):
    table = tmp_path / "faq.csv"
    table.write_text("Frage,Antwort,Notiz\nWann öffnen Sie?,Um acht Uhr.,x\n营业时间？,早上八点。,y\n", encoding="utf-8")
    upload(page, table)
    expect(page.locator("#ds-upload-report")).to_contain_text("has the columns Frage, Antwort, Notiz", timeout=SLOW)
    for box, column in (("#ds-csv-prompt", "Frage"), ("#ds-csv-response", "Antwort")):
        page.locator(f"{box} input").click()
        page.locator(box).get_by_role("option", name=column, exact=True).click()
    page.get_by_role("button", name="Import CSV").click()
    expect(page.locator("#ds-upload-report")).to_contain_text("Read 2 rows", timeout=SLOW)
    expect(page.locator("#ds-counts")).to_contain_text("What cleaning would do to faq/v1", timeout=SLOW)


def test_a_20k_row_upload_shows_its_report(page: Page, tmp_path: Path, capsys: pytest.CaptureFixture):
    demo = [json.loads(line) for line in DEMO_DATASET_FILE.read_text(encoding="utf-8").splitlines()]
    rng = random.Random(0)
    big = tmp_path / "big.jsonl"
    with big.open("w", encoding="utf-8") as handle:
        for n in range(20_000):
            row = rng.choice(demo)
            handle.write(json.dumps({"prompt": f"{row['prompt']} ({n})", "response": row["response"]},
                                    ensure_ascii=False) + "\n")
    page.get_by_role("tab", name="Data").wait_for()
    started = time.monotonic()
    upload(page, big)
    expect(page.locator("#ds-upload-report")).to_contain_text("Read 20,000 rows", timeout=SLOW)
    readable = time.monotonic() - started
    expect(page.locator("#ds-counts")).to_contain_text("What cleaning would do to big/v1", timeout=SLOW)
    checked = time.monotonic() - started
    with capsys.disabled():
        print(f"\n20,000-row upload: validation report after {readable:.1f} s, cleaning counts after {checked:.1f} s")
