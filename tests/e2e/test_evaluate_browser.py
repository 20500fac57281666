"""The Evaluate tab in a real Chromium: evaluate a demo run (a tiny model trained on the demo dataset), open
the worst sample, edit its ideal answer, send it to hard examples, and download the report."""

import json
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from core import config
from core.evaluation import results
from core.jobs.worker import run_job
from core.runs import records
from core.workspace import Workspace

pytestmark = pytest.mark.e2e
STUDIO_TINY_MODEL = "tiny-eval"
SLOW = 120_000


def demo_run(workspace: Workspace) -> str:
    """A finished run of the tiny model on the demo dataset, with a short reply length."""
    cfg = config.build(None, None, [
        f"model.name={STUDIO_TINY_MODEL}", "data.train_path=datasets/demo-clinic-faq/v1/data.jsonl", "name=demo-eval",
        "data.validation_ratio=0.05", "train.max_steps=2", "train.batch_size=4", "train.max_seq_length=256",
        "train.precision=fp32", "train.num_threads=1", "train.eval_steps=0", "train.save_steps=0",
        "generation.max_new_tokens=8", "generation.temperature=0"])
    folder = records.create(workspace, cfg)
    run_job(folder, workspace)
    return folder.run_id


def test_evaluate_a_demo_run_fix_the_worst_answer_and_download_the_report(page: Page, screenshot, studio, tmp_path: Path):
    workspace = Workspace.open(studio.workspace)
    run_id = demo_run(workspace)
    page.get_by_role("tab", name="Evaluate").click()
    page.locator("#eval-refresh").click()
    expect(page.locator("#eval-run input")).to_have_value("demo-eval (finished)", timeout=SLOW)
    page.locator("#eval-start").click()
    expect(page.locator("#eval-summary")).to_contain_text("chrF", timeout=SLOW)
    expect(page.locator("#eval-progress")).to_contain_text("Finished")
    expect(page.locator("#eval-deltas")).to_contain_text("95% CI")
    (evaluation,) = results.list_evals(workspace, run_id)
    worst = results.samples(workspace, run_id, evaluation.eval_id)[0]

    table = page.locator("#eval-samples")
    # The worst answer's row comes first; the table also holds an invisible row that sizes its columns.
    worst_cell = table.get_by_text(worst.prompt, exact=True).filter(visible=True).first
    expect(worst_cell).to_be_visible(timeout=SLOW)
    for _ in range(3):   # a click that lands while the freshly drawn table is still rendering is lost
        worst_cell.click()
        try:
            expect(page.locator("#eval-sample")).to_contain_text(f"Item {worst.index} ", timeout=5_000)
            break
        except AssertionError:
            continue
    expect(page.locator("#eval-sample")).to_contain_text(f"Item {worst.index} ")
    expect(page.locator("#eval-ideal textarea")).to_have_value(worst.reference)
    page.locator("#eval-ideal textarea").fill("Please call the front desk; they will help you at once.")
    page.locator("#eval-save-ideal").click()
    expect(table).to_contain_text("✎", timeout=SLOW)
    page.locator("#eval-pick").click()
    expect(page.locator("#eval-selection textarea")).to_have_value(str(worst.index))
    page.locator("#eval-send").click()
    expect(page.locator("#eval-send-report")).to_contain_text("hard-examples v1", timeout=SLOW)
    hard = workspace.datasets_dir / "hard-examples" / "v1" / "data.jsonl"
    (row,) = [json.loads(line) for line in hard.read_text(encoding="utf-8").splitlines()]
    assert row["messages"][-1]["content"] == "Please call the front desk; they will help you at once."
    assert row["source"] == {"run": run_id, "eval": evaluation.eval_id}
    screenshot(page, "evaluate", full_page=True)

    page.locator("#eval-report-build").click()
    links = page.locator("#eval-report-files a")
    expect(links.first).to_be_visible(timeout=SLOW)
    with page.expect_download() as caught:
        page.locator("#eval-report-files a[download$='.html']").click()
    saved = tmp_path / "report.html"
    caught.value.save_as(saved)
    report = saved.read_text(encoding="utf-8")
    assert "LoRA Studio report: demo-eval" in report and "Automatic metrics" in report and "<svg" in report
