"""Typed errors that carry a human message: what went wrong, and what to do about it.

Every failure a user can cause or meet is raised as a StudioError; the CLI prints `str(error)` on one
line and the UI shows it in a banner, so neither ever shows a traceback.
"""

from __future__ import annotations


class StudioError(Exception):
    """A failure with a message for people. `fix` says what to try; it may be empty."""

    kind = "error"

    def __init__(self, problem: str, fix: str = "") -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem} {fix}".strip())


class ConfigError(StudioError):
    kind = "config"


class WorkspaceError(StudioError):
    kind = "workspace"


class ModelLoadError(StudioError):
    kind = "model load"


class DataError(StudioError):
    kind = "data"


class DeviceBusyError(StudioError):
    kind = "busy"
