"""Typed errors that carry a human message: what went wrong, and what to do about it.

Every failure a user can cause or meet is raised as a StudioError; the CLI prints `str(error)` on one
line and the UI shows it in a banner, so neither ever shows a traceback.
"""

from __future__ import annotations

import errno


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


class OutOfMemoryError(StudioError):
    kind = "out of memory"


class DivergedError(StudioError):
    """The loss became NaN/infinite or jumped far above its recent average."""

    kind = "NaN"


class JobBusyError(StudioError):
    kind = "busy"


class DiskFullError(StudioError):
    kind = "disk full"


def classify(error: BaseException, activity: str = "Training") -> StudioError:
    """Any failure as a StudioError with a kind and a human message (out-of-memory errors recognised).
    `activity` names what failed, in words that start a sentence ("Training", "The export of run 'faq'")."""
    if isinstance(error, StudioError):
        return error
    training = activity == "Training"
    text = str(error)
    if isinstance(error, MemoryError) or "out of memory" in text.lower() or "can't allocate memory" in text:
        return OutOfMemoryError(
            f"{activity} ran out of memory.",
            "Lower train.batch_size or train.max_seq_length, switch on train.gradient_checkpointing, "
            "or use QLoRA (model.load_in_4bit) on a GPU." if training else
            "Close other work on this machine, or use a machine with more memory.")
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFullError(f"{activity} stopped: the disk is full.",
                             "Free some space (delete runs, exports or dataset versions you no longer need), then "
                             "try again. What was saved before is unchanged: files are replaced only once complete.")
    first_line = (text.strip().splitlines() or [""])[0][:300]
    return StudioError(f"{activity} failed with an unexpected {type(error).__name__}: {first_line}",
                       "The run's train.log has the details; resume the run after fixing the cause." if training else
                       "The log has the details.")
