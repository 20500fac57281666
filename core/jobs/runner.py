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
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import psutil

from core.config import RunConfig
from core.errors import JobBusyError, StudioError
from core.jobs import prepare
from core.runs import records
from core.runs.records import RunStatus
from core.system import job_status
from core.system.device_lock import DeviceLock
from core.system.job_status import JobFolder, JobStatus
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
            self._launch_training(folder, resume=False, processes=processes)
        return folder.run_id

    def resume(self, run_id: str, changes: Mapping[str, Any] | None = None) -> str:
        """Continue a stopped, failed or interrupted run from its last checkpoint, with `changes` to the
        settings a resume may change (core.training.resume), in a new job process."""
        with self._starting:
            folder = prepare.resumed_run(self.workspace, run_id, changes)
            self._launch_training(folder, resume=True, processes=records.read_status(folder).processes)
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
        self._kill_later(self._key(folder.root), lambda: records.read_status(folder).active,
                         lambda how: records.record_process_end(self.workspace, folder, -9, how), status.pid)
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
        folder = self.workspace.run_folder(run_id)
        return self._wait(self._key(folder.root), lambda: records.read_status(folder).active, timeout)

    def _launch_training(self, folder: RunFolder, resume: bool, processes: int) -> None:
        command = [sys.executable, "-m", "core.jobs.worker", "train", folder.run_id,
                   "--workspace", str(self.workspace.root), "--processes", str(processes),
                   *(["--resume"] if resume else [])]

        def failure() -> StudioError:
            status = records.read_status(folder)
            return _failure(status.error, status.message)

        self._launch(self._key(folder.root), command, folder.job_output,
                     lambda code, how: records.record_process_end(self.workspace, folder, code, how), failure)

    # Other long jobs: evaluation, response generation, merge, export (core.jobs.worker.JOB_KINDS).

    def start_job(self, kind: str, folder: Path, title: str, settings: Mapping[str, Any]) -> JobFolder:
        """Start a `kind` job writing into `folder` (inside the workspace) with `settings`; returns once its
        process holds the device. `title` names it in words ("evaluation of run 'faq'")."""
        job = JobFolder(folder)
        with self._starting:
            prepare.ensure_device_free(self.workspace)
            job_status.create(job, kind, title, dict(settings))
            key = self._key(folder)
            command = [sys.executable, "-m", "core.jobs.worker", "job", key, "--workspace", str(self.workspace.root)]
            self._launch(key, command, job.output, lambda code, how: job_status.record_process_end(job, code, how),
                         lambda: _failure(job_status.read(job).error, job_status.read(job).message))
        return job

    def job_status(self, folder: Path) -> JobStatus:
        return job_status.read(JobFolder(folder))

    def cancel_job(self, folder: Path) -> bool:
        """Ask a job to stop at its next unit of work; killed after the grace period if it does not."""
        job = JobFolder(folder)
        status = job_status.read(job)
        if not status.active:
            return False
        job.stop_request.touch()
        key = self._key(folder)
        self._kill_later(key, lambda: job_status.read(job).active,
                         lambda how: job_status.record_process_end(job, -9, how), status.pid)
        return True

    def wait_job(self, folder: Path, timeout: float | None = None) -> bool:
        return self._wait(self._key(folder), lambda: job_status.read(JobFolder(folder)).active, timeout)

    # The machinery both share.

    def _key(self, folder: Path) -> str:
        """A job's name for the lock's holder file and this manager: its folder inside the workspace."""
        return self.workspace.relative(folder)

    def _launch(self, key: str, command: list[str], output: Path, record_end: Callable[[int, str], Any],
                failure: Callable[[], StudioError]) -> None:
        """Start the job process in a session of its own, reap it when it ends, and return once it holds
        the device lock; if it ends first, raise `failure()`."""
        with output.open("ab") as printed:
            child = subprocess.Popen(command, cwd=CODE_ROOT, stdin=subprocess.DEVNULL, stdout=printed,
                                     stderr=subprocess.STDOUT, start_new_session=True,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})

        def reap() -> None:
            exit_code = child.wait()
            how = (f"it did not stop within {self.stop_grace_s:.0f} s of the stop request and was killed"
                   if key in self._killed else "")
            try:
                record_end(exit_code, how)
            except StudioError:   # deleted meanwhile
                pass
            log.info("Job %s ended with exit code %s", key, exit_code)

        reaper = threading.Thread(target=reap, name=f"reap-{key}", daemon=True)
        self._reapers[key] = reaper
        reaper.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            holder = self.lock.holder()
            if holder is not None and holder.pid == child.pid:
                return
            if child.poll() is not None:
                reaper.join()
                raise failure()
            time.sleep(0.05)
        raise JobBusyError(f"The job process for {key} did not start within {START_TIMEOUT_S:.0f} s.",
                           f"See {output.name} in its folder.")

    def _kill_later(self, key: str, still_active: Callable[[], bool], record_end: Callable[[str], Any],
                    fallback_pid: int | None) -> None:
        """The hard stop: after the grace period, kill the job's processes if it is still active."""
        def kill() -> None:
            if not still_active():
                return
            log.warning("%s did not stop within %.0f s; killing its processes", key, self.stop_grace_s)
            holder = self.lock.holder()   # the job's first process: with several ranks, their supervisor
            self._killed.add(key)
            kill_process_tree(holder.pid if holder and holder.job == key else fallback_pid)
            if key not in self._reapers:   # a job started by an earlier studio: nobody else records its end
                record_end(f"it did not stop within {self.stop_grace_s:.0f} s of the stop request and was killed")

        timer = threading.Timer(self.stop_grace_s, kill)
        timer.daemon = True
        timer.start()

    def _wait(self, key: str, still_active: Callable[[], bool], timeout: float | None) -> bool:
        reaper = self._reapers.get(key)
        if reaper is not None:
            reaper.join(timeout)
            return not reaper.is_alive()
        deadline = None if timeout is None else time.monotonic() + timeout
        while still_active():
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True


def _failure(error: dict[str, str] | None, message: str) -> StudioError:
    error = error or {}
    return StudioError(error.get("message") or message, error.get("fix", ""))


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
