"""Following one run live from its folder: what a page polls about once a second.

Each poll reads status.json, only the metric lines added since the last poll (core.runs.metrics.tail with
the offset the page kept), and the end of train.log, so a poll costs the same at step 10 and step 10 000.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.runs import metrics, records
from core.runs.records import RunStatus
from core.workspace import Workspace

LOG_TAIL_BYTES = 8192


@dataclass(frozen=True)
class Snapshot:
    status: RunStatus
    new_metrics: metrics.MetricsChunk
    log_tail: str


def log_tail(path: Path, lines: int) -> str:
    """The last `lines` lines of a log file ("" when there is none yet)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - LOG_TAIL_BYTES))
            text = handle.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def follow(workspace: Workspace, run_id: str, offset: int = 0, file_id: int = 0, log_lines: int = 10) -> Snapshot:
    """The run's status, its metrics after byte `offset` of the file seen as `file_id`, and its log's end."""
    folder = workspace.run_folder(run_id)
    return Snapshot(records.read_status(folder), metrics.tail(folder.metrics, offset, file_id),
                    log_tail(folder.log, log_lines))
