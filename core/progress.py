"""How long work reports its progress and learns that it should stop, without knowing who listens.

Workflows (evaluation, response generation, export…) take a `Progress` and call it; the job runner hands
them one that writes the job's status.json and honours Cancel, the CLI one that prints, tests the silent
default. So the same function runs in a job process, in the foreground and in a test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from core.errors import StudioError


class Cancelled(StudioError):
    """The work was asked to stop; what was done so far is kept where the workflow says so."""

    kind = "cancelled"


def _quiet_report(done: int, total: int, message: str) -> None:
    return None


@dataclass(frozen=True)
class Progress:
    report: Callable[[int, int, str], None] = field(default=_quiet_report)   # (done, total, what is happening)
    stop_requested: Callable[[], bool] = field(default=lambda: False)
    log: Callable[[str], None] = field(default=lambda line: None)

    def check(self) -> None:
        """Raise Cancelled when a stop was asked for; call it between units of work."""
        if self.stop_requested():
            raise Cancelled("Cancelled on request.", "Start it again when you are ready.")


QUIET = Progress()   # for callers that neither watch nor cancel
