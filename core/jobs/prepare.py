"""Before a training job starts: what can be refused at once, the run folder, and a resumed run's settings.

Shared by the studio (core.jobs.runner) and `lora-studio train` (core.jobs.worker), so both refuse the
same things with the same words, before any process is started or any weight is loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.config import RunConfig
from core.errors import DataError, DeviceBusyError, JobBusyError, StudioError
from core.runs import records
from core.runs.records import RunStatus
from core.system.device_lock import DeviceLock
from core.training.resume import revise
from core.training.trainset import resolve_path
from core.workspace import RunFolder, Workspace


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


def ensure_device_free(workspace: Workspace) -> None:
    """Refuse to start a job while something else holds the device, naming it."""
    holder = DeviceLock(workspace).holder()
    if holder is not None:
        raise DeviceBusyError(f"The device is busy with {holder.purpose}.",
                              "Wait until it finishes, or stop it, then try again.")


def new_run(workspace: Workspace, config: RunConfig, processes: int = 1) -> RunFolder:
    """A new run folder for `config`, after the checks above."""
    preflight(config, workspace)
    ensure_device_free(workspace)
    return records.create(workspace, config, processes=processes)


def resumed_run(workspace: Workspace, run_id: str, changes: Mapping[str, Any] | None = None) -> RunFolder:
    """The folder of a stopped, failed or interrupted run, its config revised by `changes` (dotted name →
    value; only what core.training.resume allows) and the change written to its log."""
    folder = workspace.run_folder(run_id)
    status = records.read_status(folder)
    check_resumable(status)
    ensure_device_free(workspace)
    if changes:
        config, changed = revise(records.load_config(folder), changes, status.last_checkpoint_step or 0)
        if changed:
            records.save_config(folder, config)
            records.RunRecorder(folder).log("Resuming with changed settings: " + ", ".join(
                f"{name} {old} → {new}" for name, (old, new) in changed.items()))
    return folder


def check_resumable(status: RunStatus) -> None:
    if status.active:
        raise JobBusyError(f"Run '{status.run_id}' is still {status.state}.", "Stop it first, or wait until it ends.")
    if not status.resumable:
        reason = ("it finished" if status.state == "finished" else "it has no checkpoint yet")
        raise StudioError(f"Run '{status.run_id}' cannot be resumed: {reason}.",
                          "Start a new run (lora.init_from continues from its adapter).")
