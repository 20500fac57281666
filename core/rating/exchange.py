"""Ratings in and out as files: every rating of a session as CSV or JSONL, unblinded (with the model that
wrote each response), and ratings made elsewhere (a spreadsheet, another tool) read back with the same
columns.

    export(workspace, session_id, path)        .csv (UTF-8 with a BOM, so spreadsheets read Chinese) or .jsonl
    import_file(workspace, session_id, path)   all rows or none; DataError naming the line and the fix

An import needs the columns item, rater, criterion and value; timestamp is kept when given, and the
other export columns are ignored, so an exported file imports again unchanged. Rating an item again
updates the rating, so importing the same file twice adds nothing.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.errors import DataError, StudioError
from core.rating import ratings, sessions
from core.rating.criteria import TEXT_FIELDS
from core.rating.ratings import Entry
from core.workspace import Workspace, atomic_write_text

COLUMNS = ("session", "item", "rater", "criterion", "value", "timestamp", "prompt_number", "category", "prompt",
           "model", "response", "model_b", "response_b", "winner")
REQUIRED = ("item", "rater", "criterion", "value")
FORMATS = (".csv", ".jsonl")


@dataclass(frozen=True)
class ImportResult:
    written: int
    skipped_empty: int     # comment / corrected-answer cells left empty: nothing to import


def export_rows(workspace: Workspace, session_id: str) -> list[dict[str, Any]]:
    """One row per rating with its item's prompt, responses and models (`COLUMNS`)."""
    session = sessions.get(workspace, session_id)
    items = {item.number: item for item in sessions.items(workspace, session_id)}
    rows = []
    for rating in ratings.read_all(workspace, session_id):
        item = items[rating.item]
        pairwise = len(item.models) == 2
        winner = ""
        if pairwise and rating.criterion not in TEXT_FIELDS and session.criterion(rating.criterion).kind == "preference":
            winner = {"A": item.models[0], "B": item.models[1]}.get(rating.value, "tie")
        rows.append({"session": session.id, "item": rating.item, "rater": rating.rater, "criterion": rating.criterion,
                     "value": rating.value, "timestamp": rating.updated, "prompt_number": item.prompt,
                     "category": item.category, "prompt": item.messages[-1]["content"], "model": item.models[0],
                     "response": item.responses[0], "model_b": item.models[1] if pairwise else "",
                     "response_b": item.responses[1] if pairwise else "", "winner": winner})
    return rows


def export(workspace: Workspace, session_id: str, path: Path) -> int:
    """Write every rating to `path` (.csv or .jsonl, by its suffix); returns how many rows."""
    rows = export_rows(workspace, session_id)
    suffix = _suffix(path)
    if suffix == ".csv":
        buffer = io.StringIO(newline="")
        writer = csv.DictWriter(buffer, COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(path, "\ufeff" + buffer.getvalue())
    else:
        atomic_write_text(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    return len(rows)


def import_file(workspace: Workspace, session_id: str, path: Path) -> ImportResult:
    """Add or update the ratings in `path` (.csv or .jsonl) in one transaction: all of them, or none with
    a DataError naming the first bad line."""
    session = sessions.ready(workspace, session_id)
    entries, skipped = [], 0
    for line, record in _records(Path(path)):
        try:
            entry = _entry(session, record)
            if entry is None:
                skipped += 1
                continue
            entries.append(ratings.check(session, entry))
        except StudioError as error:
            raise DataError(f"{Path(path).name}, line {line}: {error.problem}", error.fix) from None
    if not entries:
        raise DataError(f"{Path(path).name} holds no ratings.", "Export a session to see the expected columns.")
    return ImportResult(ratings.write(workspace, session, entries), skipped)


def _entry(session: sessions.Session, record: dict[str, Any]) -> Entry | None:
    cells = {key: str(value if value is not None else "").strip() for key, value in record.items() if key}
    missing = [column for column in REQUIRED[:3] if not cells.get(column)]
    if missing:
        raise DataError(f"no {' or '.join(missing)}.", f"Every row needs {', '.join(REQUIRED)}.")
    if cells.get("session") and cells["session"] != session.id:
        raise DataError(f"the row belongs to session '{cells['session']}', not '{session.id}'.",
                        "Import it into its own session, or clear the session column.")
    if not cells.get("value"):
        if cells["criterion"] in TEXT_FIELDS:
            return None
        raise DataError(f"no value for {cells['criterion']}.", "Fill in the level the rater gave.")
    try:
        item = int(float(cells["item"]))
    except (ValueError, OverflowError):   # "x" and "nan"; "inf" and "1e400" overflow
        raise DataError(f"item '{cells['item']}' is not a number.", "Use the item numbers of the session's export.") from None
    return Entry(item, cells["rater"], cells["criterion"], cells["value"], _timestamp(cells.get("timestamp", "")))


def _timestamp(text: str) -> str | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise DataError(f"timestamp '{text}' is not a date and time.", "Use ISO 8601, e.g. 2025-03-01T14:30:00Z, "
                        "or leave it empty.") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat(timespec="milliseconds")


def _suffix(path: Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise DataError(f"{Path(path).name} is neither .csv nor .jsonl.", "Name the file .csv or .jsonl.")
    return suffix


def _records(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, record) of each row of a .csv or .jsonl file."""
    suffix = _suffix(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"{path} does not exist.", "Check the path.") from None
    except UnicodeDecodeError:
        raise DataError(f"{path.name} is not UTF-8 text.", "Save it as CSV UTF-8 (or JSON Lines).") from None
    if suffix == ".jsonl":
        found = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as error:
                raise DataError(f"{path.name}, line {number}: not JSON ({error}).", "One JSON object per line.") from None
            if not isinstance(record, dict):
                raise DataError(f"{path.name}, line {number}: not a JSON object.", "One JSON object per line.")
            found.append((number, record))
        return found
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [name.strip() for name in reader.fieldnames or []]
    missing = [column for column in REQUIRED if column not in header]
    if missing:
        raise DataError(f"{path.name} has no column {', '.join(missing)}.",
                        f"The first line names the columns: at least {', '.join(REQUIRED)}.")
    reader.fieldnames = header
    return [(reader.line_num, row) for row in reader
            if any(cell.strip() for cell in row.values() if isinstance(cell, str))]
