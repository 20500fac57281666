"""kill -9 of the studio together with the job it started — a power cut, or the out-of-memory killer taking
everything — then a new start: the workspace reads consistently. A run killed while training is interrupted
and resumes from its checkpoint; an export killed half-way is never listed as complete. (A SIGKILL of the
studio in the middle of a burst of ratings is in test_rate_api.py: no acknowledged rating is lost.)
"""

import json
import os
import signal
import time
from pathlib import Path

import pytest
from support import RunningStudio, workspace_with_default_model
from test_train_api import ONLY_ENDS_WHEN_STOPPED, STUDIO_TINY_MODEL, configure, connect, wait_for
from tiny import build_tiny_model

from core.system.device_lock import DeviceLock
from core.workspace import ExportFolder, Workspace


@pytest.fixture
def workspace(tmp_path: Path, converted_default_model: Path, memorised_runs) -> Path:
    made = workspace_with_default_model(tmp_path / "ws", converted_default_model)
    build_tiny_model(made.model_dir(STUDIO_TINY_MODEL))
    memorised_runs.copy_into(made)
    return made.root


def restarted(workspace: Path, log: Path) -> RunningStudio:
    studio = RunningStudio(workspace, log)
    studio.wait_ready()
    return studio


def test_kill_9_while_training_leaves_the_run_interrupted_and_resumable(workspace: Path, tmp_path: Path):
    first = restarted(workspace, tmp_path / "first.log")
    try:
        client = connect(first.url)
        configure(client, train_max_steps=ONLY_ENDS_WHEN_STOPPED, train_save_steps=3)
        client.predict(api_name="/train_start")
        saved = wait_for(client, lambda status: (status["last_checkpoint_step"] or 0) >= 3)
        first.kill_with_jobs()
    finally:
        first.stop()

    second = restarted(workspace, tmp_path / "second.log")
    try:
        client = connect(second.url)
        killed = wait_for(client, lambda status: status["state"] == "interrupted")
        assert killed["run_id"] == saved["run_id"] and killed["last_checkpoint_step"] >= 3
        assert DeviceLock(Workspace(workspace)).holder() is None   # the dead job's lock went with it
        client.predict(api_name="/train_attach")
        total = killed["last_checkpoint_step"] + 2
        client.predict(1e-4, total, 0, 0, api_name="/train_resume")
        finished = wait_for(client, lambda status: status["state"] == "finished")
        assert finished["run_id"] == saved["run_id"] and finished["step"] == total
    finally:
        second.stop()


def test_kill_9_during_an_export_never_lists_it_as_complete(workspace: Path, tmp_path: Path):
    first = restarted(workspace, tmp_path / "first.log")
    export = ExportFolder(Workspace(workspace).exports_dir / "cut-short")
    try:
        client = connect(first.url)
        client.predict(api_name="/export_list")   # fills the run picker, as the page load does
        client.predict("clinic", "merged", "cut short", api_name="/export_start")
        deadline = time.monotonic() + 120
        job = {}
        while job.get("state") != "running" or not job.get("pid"):
            assert time.monotonic() < deadline, f"the export job never started: {job}"
            time.sleep(0.05)
            job = json.loads((export.root / "status.json").read_text()) if (export.root / "status.json").exists() else {}
        os.kill(job["pid"], signal.SIGSTOP)   # frozen half-way, so the kill lands mid-export whatever the machine
        assert not export.manifest.exists()
        first.kill_with_jobs()
    finally:
        first.stop()

    second = restarted(workspace, tmp_path / "second.log")
    try:
        client = connect(second.url)
        rows = {row[0]: row for row in client.predict(api_name="/export_list")[0]["data"]}
        assert "cut-short" in rows and "complete" not in rows["cut-short"][3], rows
        assert not export.manifest.exists()
        client.predict("clinic", "adapter", "after the crash", api_name="/export_start")   # the device is free again
        deadline = time.monotonic() + 180
        while not ExportFolder(Workspace(workspace).exports_dir / "after-the-crash").manifest.exists():
            assert time.monotonic() < deadline, client.predict(api_name="/export_poll")[0]
            time.sleep(0.5)
    finally:
        second.stop()
