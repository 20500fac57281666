"""The background job: one at a time, stop, resume after a kill, and views rebuilt from the run folder."""

import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest
import torch
from support import REPO
from test_train import start_run, tiny_config, write_rows

from core import config
from core.errors import ConfigError, DeviceBusyError, JobBusyError, StudioError
from core.jobs.runner import JobManager
from core.runs import metrics, records
from core.system.device_lock import DeviceLease
from core.workspace import Workspace


def wait_for(condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_one_job_at_a_time_stop_and_resume(workspace: Workspace, tiny_model_dir: Path, tmp_path: Path):
    lease = DeviceLease()
    jobs = JobManager(workspace, lease)
    cfg = tiny_config(tiny_model_dir, write_rows(tmp_path / "faq.jsonl", repeat=5), "train.max_steps=400",
                      "train.save_steps=0", "train.eval_steps=0")
    with lease.hold("a chat reply"):
        with pytest.raises(DeviceBusyError, match="a chat reply"):
            jobs.start(cfg)
    run_id = jobs.start(cfg)
    folder = workspace.run_folder(run_id)
    assert jobs.active_run_id == run_id and lease.holder == f"training run '{run_id}'"
    with pytest.raises(JobBusyError):
        jobs.start(cfg)
    wait_for(lambda: metrics.read_all(folder.metrics))
    assert jobs.attach().run_id == run_id and jobs.status(run_id).state == "running"
    assert jobs.stop()
    assert jobs.status(run_id).state in ("stopping", "stopped")
    assert jobs.wait(120) and jobs.active_run_id is None and lease.holder is None
    stopped = jobs.status(run_id)
    assert stopped.state == "stopped" and stopped.resumable and (folder.adapter / "adapter_config.json").is_file()
    steps_before = stopped.step
    assert 0 < steps_before < 400

    jobs.resume(run_id)
    wait_for(lambda: metrics.read_all(folder.metrics)[-1]["step"] > steps_before)
    jobs.stop()
    jobs.wait(120)
    logged = metrics.read_all(folder.metrics)
    assert [r["step"] for r in logged] == list(range(1, logged[-1]["step"] + 1))  # one continuous curve
    assert "Resumed from the checkpoint of step" in folder.log.read_text()
    # Refused at once, before any run folder exists: missing data, a precision this machine lacks.
    with pytest.raises(StudioError, match="no-such-data"):
        jobs.start(tiny_config(tiny_model_dir, tmp_path / "no-such-data.jsonl"))
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="fp16 needs a GPU"):
            jobs.start(cfg.model_copy(update={"train": cfg.train.model_copy(update={"precision": "fp16"})}))
    assert len(records.list_runs(workspace)) == 1
    finished = start_run(workspace, tiny_config(tiny_model_dir, tmp_path / "faq.jsonl", "train.max_steps=1"))[0]
    with pytest.raises(StudioError, match="cannot be resumed: it finished"):
        jobs.resume(finished.run_id)


def test_killed_run_shows_interrupted_and_resumes_on_the_same_curve(workspace: Workspace, tiny_model_dir: Path,
                                                                    tmp_path: Path):
    cfg = tiny_config(tiny_model_dir, write_rows(tmp_path / "faq.jsonl", repeat=5), "train.max_steps=60",
                      "train.save_steps=3", "train.eval_steps=10", "train.save_total_limit=3")
    config_file = tmp_path / "run.yaml"
    config_file.write_text(config.to_yaml(cfg))
    process = subprocess.Popen([sys.executable, "-m", "cli", "train", str(config_file), "--workspace",
                                str(workspace.root)], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: any(workspace.runs_dir.glob("*/checkpoints/step-0000003")))
    finally:
        process.kill()
        process.wait()
    folder = records.RunFolder(next(workspace.runs_dir.iterdir()))
    killed = records.read_status(folder)
    assert killed.state == "interrupted" and killed.resumable and "Interrupted at step" in killed.message
    assert killed.step < 60, "the run ended before it could be killed"

    jobs = JobManager(workspace, DeviceLease())  # as after a studio restart: the index is healed from the folders
    with closing(workspace.connect()) as connection:
        assert connection.execute("SELECT status FROM runs").fetchone()["status"] == "interrupted"
    jobs.resume(folder.run_id)
    assert jobs.wait(180)
    assert jobs.status(folder.run_id).state == "finished"
    resumed = metrics.read_all(folder.metrics)
    assert [r["step"] for r in resumed] == list(range(1, 61))

    # The same run without the kill: the resumed curve is the same curve (optimizer, scheduler and RNG restored).
    reference, _ = start_run(workspace, cfg)
    expected = metrics.read_all(reference.metrics)
    for got, want in zip(resumed, expected):
        assert got["loss"] == pytest.approx(want["loss"], rel=1e-4, abs=1e-5), got["step"]
        assert got["lr"] == pytest.approx(want["lr"])
        assert got.keys() == want.keys()
        if "eval_loss" in want:
            assert got["eval_loss"] == pytest.approx(want["eval_loss"], rel=1e-4)


def test_metrics_are_followed_by_byte_offset(tmp_path: Path):
    path = tmp_path / "metrics.jsonl"
    assert metrics.tail(path) == metrics.MetricsChunk([], 0, 0, False)
    metrics.append(path, {"step": 1, "loss": 2.0})
    first = metrics.tail(path)
    assert first.records == [{"step": 1, "loss": 2.0}] and not first.reset
    with path.open("a") as handle:
        handle.write('{"step": 2, "loss": 1.9}\n{"step": 3, "lo')  # a line still being written
    second = metrics.tail(path, first.offset, first.file_id)
    assert second.records == [{"step": 2, "loss": 1.9}] and not second.reset
    with path.open("a") as handle:
        handle.write('ss": 1.8}\n')
    third = metrics.tail(path, second.offset, second.file_id)
    assert third.records == [{"step": 3, "loss": 1.8}]
    metrics.rewrite(path, lambda record: record["step"] <= 1)  # a resumed run rewinds to its checkpoint
    metrics.append(path, {"step": 2, "loss": 1.7})
    metrics.append(path, {"step": 3, "loss": 1.6})
    metrics.append(path, {"step": 4, "loss": 1.5})
    after = metrics.tail(path, third.offset, third.file_id)
    assert after.reset and [r["step"] for r in after.records] == [1, 2, 3, 4]
