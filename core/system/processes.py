"""Which process owns a file such as a status.json or the device lock's holder file, and whether it still
runs. A pid alone is not enough: pids are reused, so the owner is (pid, start time), and a zombie has ended."""

from __future__ import annotations

import os

import psutil


def this_process() -> tuple[int, float]:
    """(pid, start time) of this process."""
    pid = os.getpid()
    return pid, psutil.Process(pid).create_time()


def still_running(pid: int | None, started: float | None) -> bool:
    """The process (pid, start time) still runs."""
    if pid is None:
        return False
    try:
        process = psutil.Process(pid)
        return abs(process.create_time() - (started or 0.0)) < 1.0 and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
