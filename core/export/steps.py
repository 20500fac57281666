"""Progress through an export's steps: each step says what it does, counts toward 'done of total', and
honours a Cancel asked for since the last one."""

from __future__ import annotations

from core.progress import Progress


class Steps:
    def __init__(self, progress: Progress, total: int) -> None:
        self.progress = progress
        self.total = total
        self.done = 0

    def __call__(self, message: str) -> None:
        self.check()
        self.progress.report(self.done, self.total, message)
        self.progress.log(message)
        self.done += 1

    def check(self) -> None:
        self.progress.check()

    def finish(self, message: str) -> None:
        self.done = self.total
        self.progress.report(self.done, self.total, message)
