"""Append-only metrics files (one JSON object per line) and readers that follow them by byte offset.

The trainer appends one line per logged step and flushes it at once; a page polling for new points
keeps the offset it got last time and reads only what was added since. A line still being written
(no newline yet) is left for the next read. When a resumed run rewinds its file to the checkpoint's
step, the file is replaced (new inode): a reader that passes the `file_id` it got then starts over
and is told so (`reset=True`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.workspace import atomic_write_text

Record = dict[str, Any]


@dataclass(frozen=True)
class MetricsChunk:
    records: list[Record]   # the complete lines added since the offset, parsed
    offset: int             # pass this and file_id to the next tail()
    file_id: int            # identity of the file read (0 when it does not exist yet)
    reset: bool             # True when the file was rewritten: drop what was read before


def append(path: Path, record: Record) -> None:
    """Add one record as a line and flush it, so readers see whole lines only."""
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        handle.flush()


def tail(path: Path, offset: int = 0, file_id: int = 0) -> MetricsChunk:
    """Records of the complete lines after byte `offset` of the file last seen as `file_id`
    (everything for offset 0)."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return MetricsChunk([], 0, 0, offset > 0)
    size = stat.st_size
    reset = offset > 0 and (size < offset or stat.st_ino != file_id)
    start = 0 if reset else offset
    with path.open("rb") as handle:
        handle.seek(start)
        data = handle.read(size - start)
    complete = data[:data.rfind(b"\n") + 1]
    records = [json.loads(line) for line in complete.decode("utf-8").splitlines() if line.strip()]
    return MetricsChunk(records, start + len(complete), stat.st_ino, reset)


def read_all(path: Path) -> list[Record]:
    return tail(path).records


def rewrite(path: Path, keep: Callable[[Record], bool]) -> None:
    """Atomically keep only the records `keep` accepts (a resumed run drops steps past its checkpoint)."""
    kept = [record for record in read_all(path) if keep(record)]
    atomic_write_text(path, "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in kept))
