"""Ratings: one row per item, rater and criterion, so rating an item again updates it instead of adding a
twin; the comment and corrected answer are stored the same way under their own names.

    ratings.submit(workspace, session_id, item, "Dr Li", {"fluency": "3", "relevance": "2", "safety": "safe",
                                                         "comment": "", "corrected_answer": ""})
    ratings.read_all(workspace, session_id)     # every rating, for results and exports

Every write is one short transaction that takes SQLite's write lock at its start (WAL), so concurrent
raters wait a few milliseconds for each other instead of failing, and a rating the caller was told is
saved is committed to disk.
"""

from __future__ import annotations

import sqlite3
import unicodedata
from collections.abc import Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime

from core.db import write_transaction
from core.errors import DataError
from core.rating import sessions
from core.rating.criteria import TEXT_FIELDS
from core.rating.sessions import Session
from core.workspace import Workspace

MAX_RATER_NAME = 60
MAX_TEXT = 20_000


@dataclass(frozen=True)
class Rating:
    item: int
    rater: str
    criterion: str                 # a criterion's name, or comment / corrected_answer
    value: str
    created: str
    updated: str


@dataclass(frozen=True)
class Entry:
    """One rating to write; `timestamp` keeps the time of a rating made elsewhere (an import)."""

    item: int
    rater: str
    criterion: str
    value: str
    timestamp: str | None = None


def timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def check_rater(name: str) -> str:
    """A rater's name as stored: spaces collapsed; DataError when empty, too long or unprintable."""
    cleaned = " ".join(str(name or "").split())
    if not cleaned:
        raise DataError("No rater name was given.", "Enter your name once; it tells your ratings apart from others'.")
    if len(cleaned) > MAX_RATER_NAME or any(unicodedata.category(ch).startswith("C") for ch in cleaned):
        raise DataError(f"'{cleaned[:MAX_RATER_NAME]}…' is not a usable rater name.",
                        f"Use up to {MAX_RATER_NAME} printable characters, e.g. 'Dr Li'.")
    return cleaned


def submit(workspace: Workspace, session_id: str, item: int, rater: str, values: Mapping[str, str]) -> None:
    """A rater's judgement of one item: a value for every criterion (DataError naming the first missing
    one), and the optional comment and corrected answer (left empty, an earlier one is removed)."""
    session = sessions.ready(workspace, session_id)
    for criterion in session.criteria:
        if not values.get(criterion.name):
            raise DataError(f"Choose a level for {criterion.label} first.",
                            f"Click one, or press its number key (1-{len(criterion.levels)}).")
    entries = [Entry(item, rater, criterion.name, values[criterion.name]) for criterion in session.criteria]
    write(workspace, session, entries + [Entry(item, rater, name, values.get(name) or "") for name in TEXT_FIELDS])


def write(workspace: Workspace, session: Session, entries: Sequence[Entry]) -> int:
    """Insert or update `entries` in one transaction, all or none (DataError naming the first bad entry);
    an empty comment or corrected answer removes an earlier one. Each rater also gets the item in their
    sequence (core.rating.queue) if they did not have it. Returns how many ratings were written."""
    checked = [check(session, entry) for entry in entries]
    now = timestamp()
    with closing(workspace.connect()) as connection, write_transaction(connection):
        known = {row[0] for row in connection.execute("SELECT number FROM rating_items WHERE session_id = ?", (session.id,))}
        unknown = sorted({entry.item for entry in checked} - known)
        if unknown:
            raise DataError(f"Session '{session.id}' has no item {', '.join(map(str, unknown[:10]))}.",
                            f"Item numbers run from 1 to {len(known)}.")
        for item, rater in dict.fromkeys((entry.item, entry.rater) for entry in checked):
            assign(connection, session.id, item, rater)
        for entry in checked:
            key = (session.id, entry.item, entry.rater, entry.criterion)
            if entry.criterion in TEXT_FIELDS and not entry.value:
                connection.execute("DELETE FROM ratings WHERE session_id = ? AND item = ? AND rater = ? AND criterion = ?", key)
                continue
            stamp = entry.timestamp or now
            connection.execute(
                "INSERT INTO ratings (session_id, item, rater, criterion, value, created, updated) VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (session_id, item, rater, criterion) DO UPDATE SET value = excluded.value,"
                " updated = excluded.updated", (*key, entry.value, stamp, stamp))
    return len(checked)


def assign(connection: sqlite3.Connection, session_id: str, item: int, rater: str) -> None:
    """Put `item` at the end of the rater's sequence, unless they have it already (inside a write transaction)."""
    connection.execute(
        "INSERT OR IGNORE INTO rating_assignments (session_id, item, rater, position, assigned)"
        " SELECT ?, ?, ?, COALESCE(MAX(position), -1) + 1, ? FROM rating_assignments WHERE session_id = ? AND rater = ?",
        (session_id, item, rater, timestamp(), session_id, rater))


def check(session: Session, entry: Entry) -> Entry:
    """The entry as it will be stored (rater name and text tidied), or DataError/ConfigError naming what is wrong."""
    rater = check_rater(entry.rater)
    if entry.criterion in TEXT_FIELDS:
        value = str(entry.value or "").strip()
        if len(value) > MAX_TEXT:
            raise DataError(f"The {entry.criterion.replace('_', ' ')} of item {entry.item} is over {MAX_TEXT:,} characters.",
                            "Shorten it.")
    else:
        value = session.criterion(entry.criterion).check(str(entry.value).strip())
    return Entry(int(entry.item), rater, entry.criterion, value, entry.timestamp)


def read_all(workspace: Workspace, session_id: str) -> list[Rating]:
    """Every rating of the session, by item, rater and criterion."""
    with closing(workspace.connect()) as connection:
        rows = connection.execute("SELECT item, rater, criterion, value, created, updated FROM ratings WHERE session_id = ?"
                                  " ORDER BY item, rater, criterion", (session_id,)).fetchall()
    return [Rating(*row) for row in rows]


def values_of(workspace: Workspace, session_id: str, item: int, rater: str) -> dict[str, str]:
    """What `rater` gave item `item` so far: criterion name -> value."""
    with closing(workspace.connect()) as connection:
        rows = connection.execute("SELECT criterion, value FROM ratings WHERE session_id = ? AND item = ? AND rater = ?",
                                  (session_id, item, rater)).fetchall()
    return {row["criterion"]: row["value"] for row in rows}
