"""The studio's job runner: every long job runs as its own OS process, started and supervised from here.

    jobs = JobManager(workspace, lock)         # once, at start-up (the studio's context holds it)
    run_id = jobs.start(config, processes=1)   # returns once the job process holds the device lock
    jobs.status(run_id)                        # core.runs.records.RunStatus, read from status.json
    jobs.stop(run_id)                          # cooperative, then a hard kill after the grace period
    jobs.resume(run_id, {"train.learning_rate": 1e-4})   # from the last checkpoint, with safe changes
    jobs.attach()                              # the active run, else the newest one (after a page reload)
    jobs.request_checkpoint(wait_s)            # the studio is shutting down: save now, keep training

A job process (`python -m core.jobs.worker`, core.jobs.worker) runs in a session of its own and writes
only into its run folder, so the studio survives a crash or an out-of-memory kill of the job, the job
survives the browser and the studio, and a restarted studio re-attaches from the folders and the device
lock's holder file. What a job prints goes to job.out in its run folder.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psutil

from core.config import RunConfig
from core.errors import JobBusyError, StudioError
from core.jobs import prepare
from core.runs import records
from core.runs.records import RunStatus
from core.system.device_lock import DeviceLock
from core.workspace import RunFolder, Workspace

log = logging.getLogger("lora_studio")

CODE_ROOT = Path(__file__).resolve().parents[2]   # where `python -m core.jobs.worker` finds this code
STOP_GRACE_S = 120.0    # a step of a 7B model plus its checkpoint can take this long
START_TIMEOUT_S = 120.0


class JobManager:
    def __init__(self, workspace: Workspace, lock: DeviceLock, stop_grace_s: float = STOP_GRACE_S) -> None:
        self.workspace = workspace
        self.lock = lock
        self.stop_grace_s = stop_grace_s
        self._starting = threading.Lock()
        self._reapers: dict[str, threading.Thread] = {}   # one per job process this studio started
        self._killed: set[str] = set()                     # runs killed after ignoring a stop
        records.reindex(workspace)  # runs a dead process left 'running' are indexed as interrupted

    @property
    def active_run_id(self) -> str | None:
        """The run whose job process holds the device now (started by this studio or not), or None."""
        holder = self.lock.holder()
        return holder.run_id if holder else None

    def start(self, config: RunConfig, processes: int = 1) -> str:
        """Create a run for `config` and start its job process; returns its id once the job holds the
        device. Refused at once, naming the reason, when the data is missing or the device is busy."""
        if processes < 1:
            raise StudioError(f"{processes} training processes cannot train.", "Choose 1 or more.")
        with self._starting:
            folder = prepare.new_run(self.workspace, config, processes)
            self._launch(folder, resume=False, processes=processes)
        return folder.run_id

    def resume(self, run_id: str, changes: Mapping[str, Any] | None = None) -> str:
        """Continue a stopped, failed or interrupted run from its last checkpoint, with `changes` to the
        settings a resume may change (core.training.resume), in a new job process."""
        with self._starting:
            folder = prepare.resumed_run(self.workspace, run_id, changes)
            self._launch(folder, resume=True, processes=records.read_status(folder).processes)
        return run_id

    def stop(self, run_id: str | None = None) -> bool:
        """Ask a run (default: the active one) to stop after its current step, saving its adapter; if its
        process still runs after the grace period, kill it (the run is then resumable from its last
        checkpoint). False if the run is not active."""
        run_id = run_id or self.active_run_id
        if run_id is None:
            return False
        folder = self.workspace.run_folder(run_id)
        status = records.read_status(folder)
        if not status.active:
            return False
        folder.stop_request.touch()
        timer = threading.Timer(self.stop_grace_s, self._kill_if_still_running, (folder,))
        timer.daemon = True
        timer.start()
        return True

    def request_checkpoint(self, wait_s: float) -> str | None:
        """Ask the active run to save a checkpoint after its current step and carry on; wait up to
        `wait_s` seconds for it. Returns the run's id, or None when nothing trains."""
        run_id = self.active_run_id
        if run_id is None:
            return None
        folder = self.workspace.run_folder(run_id)
        before = records.read_status(folder).last_checkpoint_step
        folder.checkpoint_request.touch()
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            status = records.read_status(folder)
            if not status.active or status.last_checkpoint_step != before:
                break
            time.sleep(0.1)
        return run_id

    def status(self, run_id: str) -> RunStatus:
        return records.read_status(self.workspace.run_folder(run_id))

    def attach(self) -> RunStatus | None:
        """What a freshly loaded page shows: the active run, else the newest run, else None."""
        active = self.active_run_id
        if active:
            return self.status(active)
        history = records.list_runs(self.workspace)
        return history[0] if history else None

    def wait(self, run_id: str, timeout: float | None = None) -> bool:
        """Block until the run's job has ended and its end is recorded (True), or `timeout` seconds pass."""
        reaper = self._reapers.get(run_id)
        if reaper is not None:
            reaper.join(timeout)
            return not reaper.is_alive()
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.status(run_id).active:
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def _launch(self, folder: RunFolder, resume: bool, processes: int) -> None:
        command = [sys.executable, "-m", "core.jobs.worker", "train", folder.run_id,
                   "--workspace", str(self.workspace.root), "--processes", str(processes),
                   *(["--resume"] if resume else [])]
        with folder.job_output.open("ab") as output:
            child = subprocess.Popen(command, cwd=CODE_ROOT, stdin=subprocess.DEVNULL, stdout=output,
                                     stderr=subprocess.STDOUT, start_new_session=True,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})
        reaper = threading.Thread(target=self._reap, args=(folder, child), name=f"reap-{folder.run_id}", daemon=True)
        self._reapers[folder.run_id] = reaper
        reaper.start()
        self._await_lock(folder, child)

    def _await_lock(self, folder: RunFolder, child: subprocess.Popen[bytes]) -> None:
        """Return once the job process holds the device lock; if it ends first, raise why."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            holder = self.lock.holder()
            if holder is not None and holder.pid == child.pid:
                return
            if child.poll() is not None:
                self._reapers[folder.run_id].join()
                status = records.read_status(folder)
                error = status.error or {}
                raise StudioError(error.get("message") or status.message, error.get("fix", ""))
            time.sleep(0.05)
        raise JobBusyError(f"The job process of run '{folder.run_id}' did not start within "
                           f"{START_TIMEOUT_S:.0f} s.", "See job.out in the run folder.")

    def _reap(self, folder: RunFolder, child: subprocess.Popen[bytes]) -> None:
        """Wait for the job process (no zombie is left) and record how it ended if it could not."""
        exit_code = child.wait()
        how = (f"it did not stop within {self.stop_grace_s:.0f} s of the stop request and was killed"
               if folder.run_id in self._killed else "")
        try:
            ended = records.record_process_end(self.workspace, folder, exit_code, how)
            log.info("Job of run %s ended (exit code %s): %s", folder.run_id, exit_code, ended.state)
        except StudioError:   # the run was deleted meanwhile
            pass

    def _kill_if_still_running(self, folder: RunFolder) -> None:
        """The hard stop: kill the job's processes if the run is still active after the grace period."""
        status = records.read_status(folder)
        if not status.active:
            return
        log.warning("Run %s did not stop within %.0f s; killing its processes", folder.run_id, self.stop_grace_s)
        holder = self.lock.holder()   # the job's first process: with several ranks, their supervisor
        self._killed.add(folder.run_id)
        kill_process_tree(holder.pid if holder and holder.run_id == folder.run_id else status.pid)
        if folder.run_id not in self._reapers:   # a job started by an earlier studio: nobody else records it
            records.record_process_end(self.workspace, folder, -9, f"it did not stop within "
                                       f"{self.stop_grace_s:.0f} s of the stop request and was killed")


def kill_process_tree(pid: int | None) -> None:
    """SIGKILL a job process and everything it started (accelerate's ranks)."""
    if pid is None:
        return
    try:
        root = psutil.Process(pid)
        family = [*root.children(recursive=True), root]
    except psutil.Error:
        return
    for process in family:
        try:
            process.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(family, timeout=10)
