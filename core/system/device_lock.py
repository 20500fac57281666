"""One device lease per process: chat, evaluation, merge and training take it before using the model
device, so two heavy jobs never fight over the same memory, and the loser is told who holds it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from core.errors import DeviceBusyError


class DeviceLease:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holder: str | None = None

    @property
    def holder(self) -> str | None:
        """What holds the device now, in words (e.g. "training run 'faq-r16'"), or None."""
        return self._holder

    @contextmanager
    def hold(self, purpose: str, timeout: float = 0.0) -> Iterator[None]:
        """Hold the device for `purpose`; waits up to `timeout` seconds, then raises DeviceBusyError."""
        acquired = self._lock.acquire(timeout=timeout) if timeout > 0 else self._lock.acquire(blocking=False)
        if not acquired:
            raise DeviceBusyError(
                f"The device is busy with {self._holder or 'another job'}.",
                "Wait until it finishes, or stop it, then try again.",
            )
        self._holder = purpose
        try:
            yield
        finally:
            self._holder = None
            self._lock.release()
