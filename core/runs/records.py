"""Training runs on disk: create a run folder, record its progress, read it back from any process.

A run folder (core.workspace.RunFolder) is the whole truth about a run; the `runs` table only indexes
it. The process that trains (a job thread in the studio, the CLI, rank 0 under accelerate) writes:

    config.yaml    the exact config, written once before training starts
    status.json    rewritten atomically: state, step/total_steps, epoch, ETA, last error, owner pid
    metrics.jsonl  one line per logged step or evaluation, flushed per line (core.runs.metrics)
    train.log      human-readable progress
    summary.json   final figures, when the run ends with an adapter

Any other process (a reloaded page, a restarted studio) rebuilds its view with `read_status` and
`core.runs.metrics.tail`. A status left 'queued'/'running'/'stopping' by a process that no longer exists is
reported as 'interrupted' (resumable from its last checkpoint), never as running forever.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from core.config import RunConfig, to_yaml
from core.errors import ConfigError, StudioError, WorkspaceError
from core.runs import metrics
from core.system.processes import still_running, this_process
from core.text import N_
from core.workspace import RunFolder, Workspace, atomic_write_json, atomic_write_text, now_iso, read_json, safe_id

RunState = Literal["queued", "running", "stopping", "finished", "stopped", "failed", "interrupted"]
ACTIVE_STATES = ("queued", "running", "stopping")
RESUMABLE_STATES = ("stopped", "failed", "interrupted")


@dataclass(frozen=True)
class RunStatus:
    """What status.json says, with 'interrupted' filled in for runs whose process is gone."""

    run_id: str
    name: str
    state: RunState
    step: int = 0
    total_steps: int = 0
    epoch: float = 0.0
    eta_s: float | None = None
    loss: float | None = None
    eval_loss: float | None = None
    message: str = ""
    error: dict[str, str] | None = None   # {kind, message, fix}
    last_checkpoint_step: int | None = None
    created: str = ""
    started: str | None = None
    updated: str = ""
    finished: str | None = None
    pid: int | None = None
    pid_started: float | None = None
    processes: int = 1                    # training processes (several: accelerate, one per GPU)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def resumable(self) -> bool:
        return self.state in RESUMABLE_STATES and self.last_checkpoint_step is not None

    def to_json(self) -> dict[str, Any]:
        return {field.name: getattr(self, field.name) for field in fields(self)}


def _dated_name(config: RunConfig) -> str:
    model = Path(config.model.name).name or config.model.name
    return f"{model}-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}"


def dataset_label(config: RunConfig) -> str:
    """The training data in a few words: 'demo-clinic-faq/v1', or the file names of a mix."""
    def short(path: str) -> str:
        parts = Path(path).parts
        if len(parts) >= 3 and parts[-1] == "data.jsonl" and parts[-2].startswith("v"):
            return f"{parts[-3]}/{parts[-2]}"
        return Path(path).name
    paths = list(config.data.mix) or [config.data.train_path]
    return " + ".join(short(path) for path in paths)


def new_run_id(workspace: Workspace, config: RunConfig) -> str:
    """A free id made from the run's name (or the model and the time)."""
    return workspace.unique_id(workspace.runs_dir, config.name or _dated_name(config))


def create(workspace: Workspace, config: RunConfig, run_id: str | None = None, processes: int = 1) -> RunFolder:
    """A new run folder holding config.yaml and a 'queued' status, indexed in the database."""
    run_id = run_id or new_run_id(workspace, config)
    folder = workspace.run_folder(run_id)
    folder.root.mkdir(parents=True)
    save_config(folder, config)
    pid, pid_started = this_process()
    status = RunStatus(run_id=run_id, name=config.name or run_id, state="queued", created=now_iso(),
                       updated=now_iso(), message=N_("Waiting to start"), pid=pid, pid_started=pid_started,
                       processes=processes)
    atomic_write_json(folder.status, status.to_json())
    index(workspace, folder)
    return folder


def save_config(folder: RunFolder, config: RunConfig) -> None:
    """config.yaml: the run's settings (rewritten only when a resume changes some of them)."""
    atomic_write_text(folder.config, to_yaml(config))


def load_config(folder: RunFolder) -> RunConfig:
    from core import config as run_config

    if not folder.config.is_file():
        raise WorkspaceError(f"Run '{folder.run_id}' has no config.yaml.", "Pick another run.")
    return run_config.validate(run_config.load_yaml(folder.config))


def read_status(folder: RunFolder) -> RunStatus:
    """The run's status as any process sees it ('interrupted' when its owner process is gone)."""
    status = _recorded_status(folder)
    if status.active and not still_running(status.pid, status.pid_started):
        return _interrupted(status, latest_checkpoint(folder))
    if status.state == "running" and folder.stop_request.exists():
        return RunStatus(**{**status.to_json(), "state": "stopping", "message": N_("Stopping after the current step")})
    return status


def _interrupted(status: RunStatus, checkpoint: Path | None,
                 how: str = N_("the process running it ended")) -> RunStatus:
    """A run whose process died. The checkpoint step is read from disk: the process may have died after
    a checkpoint was complete but before status.json recorded it."""
    where = N_(f"at step {status.step}") if status.step else N_("before its first step")
    saved = int(checkpoint.name.split("-")[-1]) if checkpoint is not None else None
    resume = N_(f"resume continues from step {saved}") if saved is not None else N_("no checkpoint was saved yet")
    return RunStatus(**{**status.to_json(), "state": "interrupted", "last_checkpoint_step": saved,
                        "message": N_(f"Interrupted {where}: {how}; {resume}.")})


def _recorded_status(folder: RunFolder) -> RunStatus:
    """status.json as written (fields this version does not know are ignored)."""
    raw = read_json(folder.status)
    if not isinstance(raw, dict):
        raise WorkspaceError(f"Run '{folder.run_id}' has no status.json.", "Pick another run.")
    known = {field.name for field in fields(RunStatus)}
    return RunStatus(**{key: value for key, value in raw.items() if key in known})


def _exit_in_words(exit_code: int) -> str:
    if exit_code == -9:
        return N_("the training process was killed (SIGKILL; when nobody stopped it, that is often the system "
                  "running out of memory)")
    if exit_code < 0:
        return N_(f"the training process was killed by signal {-exit_code}")
    return N_(f"the training process ended with exit code {exit_code} (job.out in the run folder says why)")


def record_process_end(workspace: Workspace, folder: RunFolder, exit_code: int, how: str = "") -> RunStatus:
    """After the job process of a run has exited: when it ended without recording how (killed, crashed,
    out of memory), say so in status.json (`how`, or words for the exit code); index the run either way."""
    recorded = _recorded_status(folder)
    if recorded.active:
        ended = _interrupted(recorded, latest_checkpoint(folder), how or _exit_in_words(exit_code))
        atomic_write_json(folder.status, {**ended.to_json(), "updated": now_iso()})
    index(workspace, folder)
    return read_status(folder)


def list_runs(workspace: Workspace) -> list[RunStatus]:
    """Every run in the workspace, newest first, read from the folders."""
    statuses = []
    for status_file in workspace.runs_dir.glob("*/status.json"):
        try:
            statuses.append(read_status(RunFolder(status_file.parent)))
        except (WorkspaceError, TypeError, json.JSONDecodeError):
            continue  # a folder being created, or not a run: skip it rather than break the list
    return sorted(statuses, key=lambda status: status.created, reverse=True)


def latest_checkpoint(folder: RunFolder) -> Path | None:
    """The newest complete checkpoint (one whose trainer_state.json was written last)."""
    complete = sorted(path.parent for path in folder.checkpoints.glob("step-*/trainer_state.json"))
    return complete[-1] if complete else None


def index(workspace: Workspace, folder: RunFolder) -> None:
    """Upsert the run's row in the database index from its files."""
    status = read_status(folder)
    config = load_config(folder)
    summary = read_json(folder.summary, {}) or {}
    with closing(workspace.connect()) as connection, connection:
        connection.execute(
            "INSERT INTO runs (id, name, model, dataset, status, created, updated, final_loss, best_eval_loss,"
            " init_from) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET status=excluded.status,"
            " updated=excluded.updated, final_loss=excluded.final_loss, best_eval_loss=excluded.best_eval_loss",
            (status.run_id, status.name, config.model.name, dataset_label(config), status.state, status.created,
             status.updated, summary.get("final_loss"), summary.get("best_eval_loss"), config.lora.init_from))


def reindex(workspace: Workspace) -> list[RunStatus]:
    """Rebuild the index from the folders (after a restart, or runs copied in by hand)."""
    statuses = list_runs(workspace)
    for status in statuses:
        index(workspace, workspace.run_folder(status.run_id))
    return statuses


class RunRecorder:
    """The writing side of a run folder, used by the process that trains (no-op on other ranks)."""

    def __init__(self, folder: RunFolder, enabled: bool = True, echo: Callable[[str], None] | None = None) -> None:
        self.folder = folder
        self.enabled = enabled
        self.echo = echo

    def update(self, **changes: Any) -> None:
        """Merge `changes` into status.json (atomically), stamping the owner process and time."""
        if not self.enabled:
            return
        current = read_json(self.folder.status, {}) or {}
        pid, pid_started = this_process()
        atomic_write_json(self.folder.status, {**current, **changes, "pid": pid, "pid_started": pid_started,
                                               "updated": now_iso()})

    def fail(self, error: StudioError) -> None:
        self.update(state="failed", finished=now_iso(), message=str(error),
                    error={"kind": error.kind, "message": error.problem, "fix": error.fix})
        self.log(f"FAILED ({error.kind}): {error}")

    def log(self, line: str) -> None:
        if not self.enabled:
            return
        stamped = f"{datetime.now().strftime('%H:%M:%S')}  {line}"
        with self.folder.log.open("a", encoding="utf-8") as handle:
            handle.write(stamped + "\n")
        if self.echo:
            self.echo(line)

    def metric(self, record: dict[str, Any]) -> None:
        if self.enabled:
            metrics.append(self.folder.metrics, record)


def resolve_adapter(reference: str, workspace: Workspace) -> Path:
    """An earlier run's id, or a folder holding adapter_config.json, as the adapter folder."""
    candidates = [Path(reference).expanduser()]
    if safe_id(reference) == reference:
        candidates.insert(0, workspace.run_folder(reference).adapter)
    for candidate in candidates:
        if (candidate / "adapter_config.json").is_file():
            return candidate
    raise ConfigError(f"lora.init_from='{reference}' is neither a finished run nor a folder with an adapter "
                      "(adapter_config.json).", "Pick a finished run from the run history, or leave it empty.")
