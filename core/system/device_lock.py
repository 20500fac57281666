"""One lock on the compute device for everything that uses a workspace: the studio, the CLI and every job
process. Chat, evaluation, merge and training take it before they touch the model device, so two heavy
jobs never fight over the same memory, and the one that has to wait is told who holds it.

    lock = DeviceLock(workspace)
    with lock.hold("a chat reply"):     # raises DeviceBusyError naming the holder when it is taken
        ...
    lock.holder()                       # Holder(purpose, pid, since, job) or None

The lock is an OS file lock (`filelock`, flock on Linux) on <workspace>/locks/device.lock, so the kernel
releases it when its process ends in any way, SIGKILL included: a crashed job can never leave the device
locked. Beside it, device.json says who holds it, for messages and for re-attaching to a running job after
the studio restarts. Inside one process a thread lock comes first, because a file lock is shared by the
threads of the process that holds it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass

from filelock import FileLock, Timeout

from core.errors import DeviceBusyError
from core.system.processes import still_running, this_process
from core.workspace import Workspace, atomic_write_json, now_iso, read_json


@dataclass(frozen=True)
class Holder:
    """Who holds the device: what for (in words), which process, and for a job its folder in the workspace
    ("runs/faq-r16", "runs/faq-r16/evals/e1", …)."""

    purpose: str
    pid: int
    pid_started: float
    since: str
    job: str | None = None

    @property
    def alive(self) -> bool:
        return still_running(self.pid, self.pid_started)

    @property
    def run_id(self) -> str | None:
        """The run being trained, when the job is a training run."""
        parts = (self.job or "").split("/")
        return parts[1] if len(parts) == 2 and parts[0] == "runs" else None


class DeviceLock:
    def __init__(self, workspace: Workspace) -> None:
        workspace.locks_dir.mkdir(parents=True, exist_ok=True)
        self._holder_file = workspace.locks_dir / "device.json"
        self._file_lock = FileLock(workspace.locks_dir / "device.lock", thread_local=False)
        self._thread_lock = threading.Lock()

    def holder(self) -> Holder | None:
        """The live holder, or None when the device is free (a stale device.json left by a killed process
        names a dead pid and is ignored)."""
        raw = read_json(self._holder_file)
        if not isinstance(raw, dict):
            return None
        with suppress(TypeError):
            holder = Holder(**raw)
            return holder if holder.alive else None
        return None

    @contextmanager
    def hold(self, purpose: str, timeout: float = 0.0, job: str | None = None) -> Iterator[None]:
        """Hold the device for `purpose`; waits up to `timeout` seconds, then raises DeviceBusyError."""
        acquired = (self._thread_lock.acquire(timeout=timeout) if timeout > 0
                    else self._thread_lock.acquire(blocking=False))
        if not acquired:
            raise self._busy()
        try:
            try:
                self._file_lock.acquire(timeout=timeout, poll_interval=0.05)
            except Timeout:
                raise self._busy() from None
            try:
                pid, pid_started = this_process()
                atomic_write_json(self._holder_file, asdict(Holder(purpose, pid, pid_started, now_iso(), job)))
                yield
            finally:
                self._holder_file.unlink(missing_ok=True)
                self._file_lock.release()
        finally:
            self._thread_lock.release()

    def _busy(self) -> DeviceBusyError:
        holder = self.holder()
        what = holder.purpose if holder else "another job"
        return DeviceBusyError(f"The device is busy with {what}.", "Wait until it finishes, or stop it, then try again.")
