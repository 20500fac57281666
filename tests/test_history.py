"""Run history and live following, over real (tiny) training runs."""

import json
import shutil
from contextlib import closing
from pathlib import Path

import pytest

from core import config
from core.data import store
from core.errors import JobBusyError, WorkspaceError
from core.jobs import worker
from core.runs import history, metrics, monitor, records
from core.workspace import Workspace
from studio import plots
from studio.tabs.train import banner, progress_html


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> tuple[Workspace, str, str]:
    """A workspace with two finished tiny runs that differ in rank and learning rate."""
    workspace = Workspace.open(tmp_path_factory.mktemp("history") / "ws")
    small = workspace.root / "small.jsonl"   # 20 demo conversations: the runs take seconds
    small.write_text("".join(store.DEMO_DATASET_FILE.read_text(encoding="utf-8").splitlines(keepends=True)[:20]))
    common = [f"model.name={tiny_model_dir}", f"data.train_path={small}", "data.validation_ratio=0.2",
              "train.max_steps=4", "train.eval_steps=2", "train.max_seq_length=256"]
    first = worker.run_in_foreground(workspace, config.build(None, "quick-demo-cpu", [*common, "name=first"]),
                                   echo=lambda _: None)
    second = worker.run_in_foreground(workspace, config.build(None, "quick-demo-cpu", [
        *common, "name=second", "lora.r=4", "train.learning_rate=1e-4"]), echo=lambda _: None)
    return workspace, first.run_id, second.run_id


def test_history_lists_every_run_with_its_figures(trained, tiny_model_dir: Path):
    workspace, first, second = trained
    rows = {row.run_id: row for row in history.table(workspace)}
    assert set(rows) == {first, second}
    row = rows[first]
    assert (row.name, row.state, row.dataset, row.model) == ("first", "finished", "small.jsonl", str(tiny_model_dir))
    assert row.best_eval_loss is not None and row.tokens_per_s > 0 and row.duration_s > 0


def test_config_diff_names_exactly_the_changed_fields(trained):
    workspace, first, second = trained
    assert history.config_diff(workspace, first, second) == [
        ("name", "first", "second"), ("lora.r", 8, 4), ("train.learning_rate", 3e-4, 1e-4)]
    assert history.config_diff(workspace, first, first) == []


def test_rename_changes_the_display_name_only(trained):
    workspace, first, _ = trained
    history.rename(workspace, first, "  clinic FAQ, r8 ")
    assert records.read_status(workspace.run_folder(first)).name == "clinic FAQ, r8"
    assert workspace.run_folder(first).root.is_dir()
    with closing(workspace.connect()) as connection:
        assert connection.execute("SELECT name FROM runs WHERE id = ?", (first,)).fetchone()[0] == "clinic FAQ, r8"
    with pytest.raises(WorkspaceError, match="needs a name"):
        history.rename(workspace, first, " ")


def test_delete_removes_one_run_and_refuses_an_active_one(trained):
    workspace, first, second = trained
    copy = workspace.run_folder("copy-of-first")
    shutil.copytree(workspace.run_folder(first).root, copy.root)
    records.index(workspace, copy)
    history.delete(workspace, copy.run_id)
    assert not copy.root.exists()
    assert copy.run_id not in {row.run_id for row in history.table(workspace)}
    assert {first, second} <= {row.run_id for row in history.table(workspace)}
    with closing(workspace.connect()) as connection:
        assert connection.execute("SELECT COUNT(*) FROM runs WHERE id = ?", (copy.run_id,)).fetchone()[0] == 0

    queued = records.create(workspace, config.build(None, "quick-demo-cpu", ["name=busy"]))   # owned by this process
    with pytest.raises(JobBusyError, match="still training"):
        history.delete(workspace, queued.run_id)
    with pytest.raises(JobBusyError):
        history.rename(workspace, queued.run_id, "other")
    assert queued.root.is_dir()
    with pytest.raises(WorkspaceError, match="no run"):
        history.delete(workspace, "never-existed")


def test_following_reads_only_new_metric_lines(trained):
    workspace, first, _ = trained
    folder = workspace.run_folder("followed")
    shutil.copytree(workspace.run_folder(first).root, folder.root)
    everything = monitor.follow(workspace, folder.run_id, log_lines=3)
    assert [r["step"] for r in everything.new_metrics.records] == [1, 2, 3, 4]
    assert everything.status.state == "finished"
    assert len(everything.log_tail.splitlines()) == 3 and "Finished after 4 steps" in everything.log_tail
    metrics.append(folder.metrics, {"step": 5, "loss": 1.0})
    later = monitor.follow(workspace, folder.run_id, everything.new_metrics.offset, everything.new_metrics.file_id)
    assert later.new_metrics.records == [{"step": 5, "loss": 1.0}] and not later.new_metrics.reset


def test_figures_show_each_series(trained):
    workspace, first, second = trained
    records = metrics.read_all(workspace.run_folder(first).metrics)
    loss = plots.loss_figure(records)
    assert [trace["name"] for trace in loss["data"]] == ["train loss", "train loss (smoothed)", "eval loss"]
    assert loss["data"][2]["x"] == [r["step"] for r in records if "eval_loss" in r]
    stats = plots.stats_figure(records)
    assert [trace["yaxis"] for trace in stats["data"]] == ["y", "y2", "y3", "y4"]
    assert stats["data"][0]["y"] == [r["lr"] for r in records]
    compare = plots.compare_figure({run: metrics.read_all(workspace.run_folder(run).metrics) for run in (first, second)})
    assert [trace["name"] for trace in compare["data"]] == [
        f"{run}: {series}" for run in (first, second) for series in ("train loss (smoothed)", "eval loss")]
    assert json.loads(plots.as_plot(loss).plot) == loss
    assert plots.smooth([2.0, 2.0, 2.0]) == pytest.approx([2.0, 2.0, 2.0])   # bias-corrected: no pull to zero


def test_failure_banner_names_the_reason_and_what_to_try():
    failed = records.RunStatus(run_id="r1", name="faq", state="failed", message="Out of memory at step 3",
                            error={"kind": "out of memory", "message": "The GPU ran out of memory at step 3.",
                                   "fix": "Lower train.batch_size or switch on gradient checkpointing."})
    text = banner(failed)
    assert "✗ Failed" in text and "**Why (out of memory):** The GPU ran out of memory at step 3." in text
    assert "**What to try:** Lower train.batch_size" in text
    assert "Step 3 of 10" in progress_html(records.RunStatus(run_id="r1", name="faq", state="running", step=3,
                                                          total_steps=10, eta_s=42.0))
