"""The job runner: each training run is its own OS process holding the device lock; stop (cooperative, then
a hard kill), a killed job, resuming with changed settings, and views rebuilt from the run folder.

Runs that must still be running when the test acts are given far more steps than any machine could do
in the test's time (A_RUN_THAT_ONLY_ENDS_WHEN_STOPPED): they end when the test stops them, never by
themselves, whatever the machine's speed.
"""

import os
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import psutil
import pytest
import torch
from support import REPO
from test_train import start_run, tiny_config, write_rows

from core import config
from core.errors import ConfigError, DeviceBusyError, StudioError
from core.jobs.runner import JobManager
from core.runs import metrics, records
from core.system.device_lock import DeviceLock
from core.training.resume import revise
from core.workspace import Workspace

A_RUN_THAT_ONLY_ENDS_WHEN_STOPPED = "train.max_steps=1000000"


def wait_for(condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_run_trains_in_its_own_process_holding_the_device_then_stops_and_resumes_with_a_lower_rate(
        workspace: Workspace, tiny_model_dir: Path, tmp_path: Path):
    lock = DeviceLock(workspace)
    jobs = JobManager(workspace, lock)
    cfg = tiny_config(tiny_model_dir, write_rows(tmp_path / "faq.jsonl", repeat=5), A_RUN_THAT_ONLY_ENDS_WHEN_STOPPED,
                      "train.save_steps=0", "train.eval_steps=0")
    with lock.hold("a chat reply"):
        with pytest.raises(DeviceBusyError, match="a chat reply"):
            jobs.start(cfg)
    assert records.list_runs(workspace) == []   # refused before any run folder exists

    run_id = jobs.start(cfg)
    holder = lock.holder()   # start() returns once the job process holds the device
    assert holder.run_id == run_id and holder.pid != os.getpid() and jobs.active_run_id == run_id
    with pytest.raises(DeviceBusyError, match=f"training run '{run_id}'"):
        jobs.start(cfg)
    folder = workspace.run_folder(run_id)
    wait_for(lambda: metrics.read_all(folder.metrics))
    assert jobs.attach().run_id == run_id and jobs.status(run_id).state == "running"
    assert jobs.stop()
    assert jobs.wait(run_id, 120) and lock.holder() is None
    stopped = jobs.status(run_id)
    assert stopped.state == "stopped" and stopped.resumable and (folder.adapter / "adapter_config.json").is_file()
    assert stopped.last_checkpoint_step == stopped.step > 0

    # "Resume with a lower learning rate": from the checkpoint, with the new rate and a reachable end.
    total = stopped.step + 4
    jobs.resume(run_id, {"train.learning_rate": 0.001, "train.max_steps": total})
    assert jobs.wait(run_id, 120)
    assert jobs.status(run_id).state == "finished"
    logged = metrics.read_all(folder.metrics)
    assert [r["step"] for r in logged] == list(range(1, total + 1))   # one continuous curve
    for record in logged[stopped.step:]:   # linear decay, no warm-up: the new peak times what is left
        assert record["lr"] == pytest.approx(0.001 * (total - record["step"]) / total)
    assert logged[stopped.step - 1]["lr"] == pytest.approx(0.01 * (1_000_000 - stopped.step) / 1_000_000)
    log = folder.log.read_text()
    assert "Resuming with changed settings: train.learning_rate 0.01 → 0.001" in log
    assert f"Resumed from the checkpoint of step {stopped.step}, learning rate 0.001" in log
    assert records.load_config(folder).train.learning_rate == 0.001

    # Refused at once, before any run folder exists: missing data, a precision this machine lacks.
    with pytest.raises(StudioError, match="no-such-data"):
        jobs.start(tiny_config(tiny_model_dir, tmp_path / "no-such-data.jsonl"))
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="fp16 needs a GPU"):
            jobs.start(cfg.model_copy(update={"train": cfg.train.model_copy(update={"precision": "fp16"})}))
    assert len(records.list_runs(workspace)) == 1
    with pytest.raises(StudioError, match="cannot be resumed: it finished"):
        jobs.resume(run_id)


def test_resume_accepts_only_changes_the_checkpoint_does_not_depend_on(tiny_model_dir: Path, tmp_path: Path):
    cfg = tiny_config(tiny_model_dir, tmp_path / "faq.jsonl", "train.max_steps=50")
    revised, changes = revise(cfg, {"train.learning_rate": 1e-4, "train.eval_steps": 5, "lora.r": 8}, steps_done=20)
    assert changes == {"train.learning_rate": (0.01, 1e-4), "train.eval_steps": (4, 5)}   # lora.r=8 is no change
    assert revised.train.learning_rate == 1e-4 and revised.lora.r == 8
    with pytest.raises(ConfigError, match="'lora.r' cannot change when a run resumes: the adapter's shape"):
        revise(cfg, {"lora.r": 16}, steps_done=20)
    with pytest.raises(ConfigError, match="'data.train_path' cannot change.*lora.init_from"):
        revise(cfg, {"data.train_path": "other.jsonl"}, steps_done=20)
    with pytest.raises(ConfigError, match="'train.batch_size' cannot change"):
        revise(cfg, {"train.batch_size": 8}, steps_done=20)
    with pytest.raises(ConfigError, match="would end the run before it resumes: it has done 20 steps"):
        revise(cfg, {"train.max_steps": 20}, steps_done=20)
    with pytest.raises(ConfigError, match="Unknown config field 'train.learning_rat'"):
        revise(cfg, {"train.learning_rat": 1e-4}, steps_done=20)


def test_a_killed_job_leaves_the_run_interrupted_and_a_stop_it_ignores_ends_in_a_kill(
        workspace: Workspace, tiny_model_dir: Path, tmp_path: Path):
    lock = DeviceLock(workspace)
    jobs = JobManager(workspace, lock, stop_grace_s=1.0)
    cfg = tiny_config(tiny_model_dir, write_rows(tmp_path / "faq.jsonl", repeat=5), A_RUN_THAT_ONLY_ENDS_WHEN_STOPPED,
                      "train.save_steps=3", "train.eval_steps=0")
    run_id = jobs.start(cfg)
    folder = workspace.run_folder(run_id)
    wait_for(lambda: records.read_status(folder).last_checkpoint_step)
    os.kill(lock.holder().pid, 9)   # as the kernel's out-of-memory killer would
    assert jobs.wait(run_id, 60)
    killed = jobs.status(run_id)
    assert killed.state == "interrupted" and killed.resumable and "killed (SIGKILL" in killed.message
    assert lock.holder() is None
    with closing(workspace.connect()) as connection:
        assert connection.execute("SELECT status FROM runs").fetchone()["status"] == "interrupted"

    # A job that does not honour Stop (here: frozen with SIGSTOP) is killed after the grace period.
    jobs.resume(run_id)
    frozen = psutil.Process(lock.holder().pid)
    frozen.suspend()
    assert jobs.stop(run_id)
    assert jobs.wait(run_id, 60)
    ended = jobs.status(run_id)
    assert ended.state == "interrupted" and "did not stop within 1 s of the stop request and was killed" in ended.message
    assert lock.holder() is None


def test_a_failing_job_frees_the_device_and_a_long_name_gets_a_valid_id(workspace: Workspace, tiny_model_dir: Path,
                                                                       tmp_path: Path):
    long_name = "clinic-faq-" + "x" * 70
    taken = records.create(workspace, tiny_config(tiny_model_dir, tmp_path / "faq.jsonl", f"name={long_name}"))
    assert len(taken.run_id) == 64
    jobs = JobManager(workspace, DeviceLock(workspace))
    data = write_rows(tmp_path / "faq.jsonl")
    run_id = jobs.start(tiny_config(tmp_path / "no-model-here", data, f"name={long_name}", "model.name=owner/none"))
    assert run_id != taken.run_id and len(run_id) <= 64 and run_id.endswith("-2")
    assert jobs.wait(run_id, 60)
    failed = jobs.status(run_id)
    assert failed.state == "failed" and failed.error["kind"] == "model load"
    assert DeviceLock(workspace).holder() is None
    assert jobs.wait(jobs.start(tiny_config(tiny_model_dir, data, "train.max_steps=1")), 120)


def test_a_killed_cli_run_resumes_on_the_same_curve(workspace: Workspace, tiny_model_dir: Path, tmp_path: Path):
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

    jobs = JobManager(workspace, DeviceLock(workspace))  # as after a studio restart: the index is healed
    with closing(workspace.connect()) as connection:
        assert connection.execute("SELECT status FROM runs").fetchone()["status"] == "interrupted"
    jobs.resume(folder.run_id)
    assert jobs.wait(folder.run_id, 180)
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
