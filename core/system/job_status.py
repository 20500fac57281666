"""The folder of a long job other than training (evaluation, response generation, merge, export…) and its
status, written by the job process and read by anyone.

    <folder>/job.json      what to do: {"kind": "evaluate", "title": "…", …the kind's own settings}
    <folder>/status.json   rewritten atomically: state, done/total, ETA, message, error, owner process
    <folder>/job.log       human-readable progress
    <folder>/job.out       what the job process printed (for when it crashed)
    <folder>/STOP          present while a stop (Cancel) has been asked for

Training keeps its own, richer record (core.runs.records) in the same spirit. A status left active by a
process that no longer exists reads as 'interrupted', never as running forever.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from core.errors import StudioError, WorkspaceError
from core.system.processes import still_running, this_process
from core.text import N_
from core.workspace import atomic_write_json, now_iso, read_json

JobState = Literal["queued", "running", "stopping", "finished", "stopped", "failed", "interrupted"]
ACTIVE_STATES = ("queued", "running", "stopping")


@dataclass(frozen=True)
class JobStatus:
    kind: str
    title: str                            # in words: "evaluation of run 'faq-r16'"
    state: JobState
    done: int = 0
    total: int = 0
    eta_s: float | None = None
    message: str = ""
    error: dict[str, str] | None = None   # {kind, message, fix}
    created: str = ""
    started: str | None = None
    updated: str = ""
    finished: str | None = None
    pid: int | None = None
    pid_started: float | None = None

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    def to_json(self) -> dict[str, Any]:
        return {item.name: getattr(self, item.name) for item in fields(self)}


@dataclass(frozen=True)
class JobFolder:
    root: Path

    @property
    def spec(self) -> Path:
        return self.root / "job.json"

    @property
    def status(self) -> Path:
        return self.root / "status.json"

    @property
    def log(self) -> Path:
        return self.root / "job.log"

    @property
    def output(self) -> Path:
        return self.root / "job.out"

    @property
    def stop_request(self) -> Path:
        return self.root / "STOP"


def create(folder: JobFolder, kind: str, title: str, settings: dict[str, Any]) -> None:
    """A new job folder: job.json with the kind, title and settings, and a 'queued' status."""
    folder.root.mkdir(parents=True, exist_ok=True)
    atomic_write_json(folder.spec, {"kind": kind, "title": title, **settings})
    pid, pid_started = this_process()
    atomic_write_json(folder.status, JobStatus(kind, title, "queued", message=N_("Waiting to start"), created=now_iso(),
                                               updated=now_iso(), pid=pid, pid_started=pid_started).to_json())


def read(folder: JobFolder) -> JobStatus:
    """The job's status as any process sees it ('interrupted' when its owner process is gone)."""
    raw = read_json(folder.status)
    if not isinstance(raw, dict):
        raise WorkspaceError(f"{folder.root.name} has no status.json.", "Pick another job.")
    known = {item.name for item in fields(JobStatus)}
    status = JobStatus(**{key: value for key, value in raw.items() if key in known})
    if status.active and not still_running(status.pid, status.pid_started):
        return JobStatus(**{**status.to_json(), "state": "interrupted",
                            "message": N_(f"Interrupted after {status.done} of {status.total}: the process running it ended.")})
    return status


class JobRecorder:
    """The writing side of a job folder, used by the job process."""

    def __init__(self, folder: JobFolder) -> None:
        self.folder = folder
        self._started = time.monotonic()

    def update(self, **changes: Any) -> None:
        current = read_json(self.folder.status, {}) or {}
        pid, pid_started = this_process()
        atomic_write_json(self.folder.status, {**current, **changes, "pid": pid, "pid_started": pid_started,
                                               "updated": now_iso()})

    def progress(self, done: int, total: int, message: str) -> None:
        """Progress with an ETA from the pace so far."""
        elapsed = time.monotonic() - self._started
        eta = elapsed / done * (total - done) if done and total >= done else None
        self.update(state="running", done=done, total=total, message=message,
                    eta_s=None if eta is None else round(eta, 1))

    def log(self, line: str) -> None:
        with self.folder.log.open("a", encoding="utf-8") as handle:
            handle.write(f"{datetime.now().strftime('%H:%M:%S')}  {line}\n")

    def fail(self, error: StudioError) -> None:
        self.update(state="failed", finished=now_iso(), eta_s=None, message=str(error),
                    error={"kind": error.kind, "message": error.problem, "fix": error.fix})
        self.log(f"FAILED ({error.kind}): {error}")


def record_process_end(folder: JobFolder, exit_code: int, how: str = "") -> JobStatus:
    """After the job process has exited: when it ended without recording how, say so in status.json."""
    raw = read_json(folder.status, {}) or {}
    if raw.get("state") in ACTIVE_STATES:
        how = how or N_(f"the process was killed (signal {-exit_code})" if exit_code < 0
                        else f"the process ended with exit code {exit_code} (job.out in its folder says why)")
        done, total = raw.get("done", 0), raw.get("total", 0)
        atomic_write_json(folder.status, {**raw, "state": "interrupted", "eta_s": None, "updated": now_iso(),
                                          "message": N_(f"Interrupted after {done} of {total}: {how}.")})
    return read(folder)
