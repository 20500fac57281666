"""Training as a background job: one per process, in a thread, with everything it knows on disk.

    jobs = JobManager(workspace, lease)        # once, at start-up (the studio's context holds it)
    run_id = jobs.start(config)                # returns at once; DeviceBusyError / JobBusyError if not free
    jobs.status(run_id)                        # core.runs.records.RunStatus, read from status.json
    core.runs.metrics.tail(workspace.run_folder(run_id).metrics, offset, file_id)   # new chart points
    jobs.stop()                                # cooperative: ends after the current step, saves the adapter
    jobs.resume(run_id)                        # a stopped, failed or interrupted run, from its last checkpoint
    jobs.attach()                              # the active run, else the newest one (after a page reload)

The thread only calls `run_job`, the same function the CLI runs in the foreground, and every view is
rebuilt from the run folder (core.runs.records), so closing the browser never affects a run and a subprocess
runner could replace the thread without any change to the pages. A stop request is a STOP file in
the run folder (plus an event for the thread), so any process can ask any run to stop.
"""

from __future__ import annotations

import os
import signal
import threading
import traceback
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import torch

from core.config import RunConfig
from core.errors import DataError, JobBusyError, StudioError, classify
from core.runs import records
from core.runs.records import RunStatus
from core.system.device_lock import DeviceLease
from core.training.trainset import resolve_path
from core.workspace import RunFolder, Workspace


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def run_job(folder: RunFolder, workspace: Workspace, stop_event: threading.Event | None = None,
            resume: bool = False, echo: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Train the run in `folder` and record how it ended. A failure is classified (out of memory, data,
    config, model load, NaN…), written to status.json with its fix, and raised as a StudioError."""
    from core.training import train

    recorder = records.RunRecorder(folder, enabled=_is_main_process(), echo=echo)
    if resume and recorder.enabled:
        folder.stop_request.unlink(missing_ok=True)  # the request that stopped it last time
    try:
        summary = train.train(records.load_config(folder), folder.root, workspace, stop_event, resume, echo)
    except KeyboardInterrupt:  # a second Ctrl-C: no adapter, but resumable from the last checkpoint
        recorder.update(state="interrupted", message="Aborted with Ctrl-C; resume continues from the last checkpoint.")
        raise
    except BaseException as error:  # noqa: BLE001 - every failure ends up in status.json
        failure = classify(error)
        if not isinstance(error, StudioError) and recorder.enabled:
            with folder.log.open("a", encoding="utf-8") as handle:
                handle.write("".join(traceback.format_exception(error)))
        recorder.fail(failure)
        raise failure from error
    finally:
        if recorder.enabled:
            records.index(workspace, folder)
    return summary


def preflight(config: RunConfig, workspace: Workspace) -> None:
    """Fail at once, before a run folder exists, on what can be checked without loading anything:
    the data files exist and the chosen precision is available on this machine."""
    from core.system.hardware import mixed_precision

    mixed_precision(config.train.precision)
    paths = [*config.data.mix, config.data.validation_path] if config.data.mix else \
        [config.data.train_path, config.data.validation_path]
    for path in filter(None, paths):
        if not resolve_path(path, workspace).is_file():
            raise DataError(f"The data file {resolve_path(path, workspace)} does not exist.",
                            "Pick a dataset version in the Data tab, or fix data.train_path (absolute, or "
                            "relative to the workspace).")


def create_run(workspace: Workspace, config: RunConfig) -> RunFolder:
    """A new run folder; under several processes (accelerate/torchrun) rank 0 creates it and the
    others learn its id."""
    if int(os.environ.get("WORLD_SIZE", "1")) == 1:
        return records.create(workspace, config)
    from accelerate import PartialState
    from accelerate.utils import broadcast_object_list

    state = PartialState(cpu=not torch.cuda.is_available())  # joins the process group (gloo without CUDA)
    run_id = [records.create(workspace, config).run_id if state.is_main_process else None]
    broadcast_object_list(run_id)
    return workspace.run_folder(run_id[0])


def run_in_foreground(workspace: Workspace, config: RunConfig | None = None, resume_id: str | None = None,
                      echo: Callable[[str], None] = print) -> RunFolder:
    """`lora-studio train`: a new run (or `resume_id`) in this process. Ctrl-C or SIGTERM asks for a
    clean stop (adapter saved); a second Ctrl-C aborts."""
    if resume_id:
        folder = workspace.run_folder(resume_id)
        _check_resumable(records.read_status(folder))
    else:
        assert config is not None
        preflight(config, workspace)
        folder = create_run(workspace, config)
    if _is_main_process():
        echo(f"Run {folder.run_id}: {folder.root}")
    stop_event = threading.Event()

    def request_stop(signum: int, frame: Any) -> None:
        if stop_event.is_set():
            raise KeyboardInterrupt
        stop_event.set()
        echo("Stopping after the current step (press Ctrl-C again to abort)…")

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        run_job(folder, workspace, stop_event, resume=bool(resume_id), echo=echo)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return folder


def _check_resumable(status: RunStatus) -> None:
    if status.active:
        raise JobBusyError(f"Run '{status.run_id}' is still {status.state}.", "Stop it first, or wait until it ends.")
    if not status.resumable:
        reason = ("it finished" if status.state == "finished" else "it has no checkpoint yet")
        raise StudioError(f"Run '{status.run_id}' cannot be resumed: {reason}.",
                          "Start a new run (lora.init_from continues from its adapter).")


class JobManager:
    """Owns the one background training thread of this process."""

    def __init__(self, workspace: Workspace, lease: DeviceLease) -> None:
        self.workspace = workspace
        self.lease = lease
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._run_id: str | None = None
        self._stop = threading.Event()
        records.reindex(workspace)  # runs a dead process left 'running' are indexed as interrupted

    @property
    def active_run_id(self) -> str | None:
        """The run this process is training now, or None."""
        with self._lock:
            return self._run_id

    def start(self, config: RunConfig) -> str:
        """Create a run for `config` and train it in the background; returns its id at once."""
        preflight(config, self.workspace)
        with self._lock:
            self._ensure_idle()
            run_id = records.new_run_id(self.workspace, config)
            lease = self._take_lease(run_id)
            folder = records.create(self.workspace, config, run_id)
            self._launch(folder, lease, resume=False)
        return folder.run_id

    def resume(self, run_id: str) -> str:
        """Continue a stopped, failed or interrupted run from its last checkpoint, in the background."""
        folder = self.workspace.run_folder(run_id)
        with self._lock:
            self._ensure_idle()
            _check_resumable(records.read_status(folder))
            lease = self._take_lease(run_id)
            self._launch(folder, lease, resume=True)
        return run_id

    def stop(self, run_id: str | None = None) -> bool:
        """Ask a run (default: the active one) to stop after its current step; False if none runs."""
        run_id = run_id or self.active_run_id
        if run_id is None:
            return False
        folder = self.workspace.run_folder(run_id)
        if not records.read_status(folder).active:
            return False
        folder.stop_request.touch()
        if run_id == self.active_run_id:
            self._stop.set()
        return True

    def status(self, run_id: str) -> RunStatus:
        return records.read_status(self.workspace.run_folder(run_id))

    def attach(self) -> RunStatus | None:
        """What a freshly loaded page shows: the active run, else the newest run, else None."""
        active = self.active_run_id
        if active:
            return self.status(active)
        history = records.list_runs(self.workspace)
        return history[0] if history else None

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the active job ends (True) or `timeout` seconds pass (False)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def _ensure_idle(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            raise JobBusyError(f"Run '{self._run_id}' is training.", "Wait until it ends, or stop it first.")

    def _take_lease(self, name: str) -> AbstractContextManager[None]:
        lease = self.lease.hold(f"training run '{name}'")
        lease.__enter__()  # raises DeviceBusyError, naming what holds the device
        return lease

    def _launch(self, folder: RunFolder, lease: AbstractContextManager[None], resume: bool) -> None:
        self._stop = threading.Event()
        self._run_id = folder.run_id

        def work() -> None:
            try:
                run_job(folder, self.workspace, self._stop, resume)
            except StudioError:
                pass  # already classified and written to status.json by run_job
            finally:
                lease.__exit__(None, None, None)
                with self._lock:
                    self._run_id = None

        self._thread = threading.Thread(target=work, name=f"train-{folder.run_id}", daemon=True)
        self._thread.start()
