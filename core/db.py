"""The SQLite index of the workspace: a connection in WAL mode and numbered migrations.

Folders on disk are the truth; these tables index them so that lists and searches are fast. Later
features add a migration at the end of MIGRATIONS; applied ones are never edited.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

MIGRATIONS: list[str] = [
    # 1: datasets and their versions, runs.
    """
    CREATE TABLE datasets (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL,
        source_file TEXT NOT NULL,
        created     TEXT NOT NULL
    );
    CREATE TABLE dataset_versions (
        dataset_id  TEXT NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
        version     INTEGER NOT NULL,
        parent      INTEGER,
        rows        INTEGER NOT NULL,
        sha256      TEXT NOT NULL,
        note        TEXT NOT NULL DEFAULT '',
        created     TEXT NOT NULL,
        PRIMARY KEY (dataset_id, version)
    );
    CREATE TABLE runs (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL,
        model       TEXT NOT NULL,
        dataset     TEXT NOT NULL DEFAULT '',
        status      TEXT NOT NULL,
        created     TEXT NOT NULL
    );
    """,
    # 2: what made each dataset version (upload, clean, restore, split, mix) and what it set aside.
    """
    ALTER TABLE dataset_versions ADD COLUMN kind TEXT NOT NULL DEFAULT 'upload';
    ALTER TABLE dataset_versions ADD COLUMN rejected INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE dataset_versions ADD COLUMN validation_rows INTEGER NOT NULL DEFAULT 0;
    """,
    # 3: training runs: when the row last changed, their result, and the run a two-stage run started from.
    """
    ALTER TABLE runs ADD COLUMN updated TEXT NOT NULL DEFAULT '';
    ALTER TABLE runs ADD COLUMN final_loss REAL;
    ALTER TABLE runs ADD COLUMN best_eval_loss REAL;
    ALTER TABLE runs ADD COLUMN init_from TEXT NOT NULL DEFAULT '';
    """,
    # 4: human rating sessions (core.rating): the prompts and responses they rate, the items raters see,
    # who was given which item in which order, and the ratings, one row per item, rater and criterion.
    """
    CREATE TABLE rating_sessions (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL,
        mode        TEXT NOT NULL CHECK (mode IN ('scale', 'pairwise')),
        models      TEXT NOT NULL,
        criteria    TEXT NOT NULL,
        overlap     INTEGER NOT NULL CHECK (overlap >= 1),
        source      TEXT NOT NULL,
        seed        INTEGER NOT NULL,
        max_new_tokens INTEGER,
        state       TEXT NOT NULL CHECK (state IN ('generating', 'ready')),
        created     TEXT NOT NULL
    );
    CREATE TABLE rating_prompts (
        session_id  TEXT NOT NULL REFERENCES rating_sessions(id) ON DELETE CASCADE,
        number      INTEGER NOT NULL,
        messages    TEXT NOT NULL,
        reference   TEXT NOT NULL DEFAULT '',
        category    TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (session_id, number)
    );
    CREATE TABLE rating_responses (
        session_id  TEXT NOT NULL,
        prompt      INTEGER NOT NULL,
        model       TEXT NOT NULL,
        text        TEXT NOT NULL,
        PRIMARY KEY (session_id, prompt, model),
        FOREIGN KEY (session_id, prompt) REFERENCES rating_prompts(session_id, number) ON DELETE CASCADE
    );
    CREATE TABLE rating_items (
        session_id  TEXT NOT NULL REFERENCES rating_sessions(id) ON DELETE CASCADE,
        number      INTEGER NOT NULL,
        prompt      INTEGER NOT NULL,
        model_a     TEXT NOT NULL,
        model_b     TEXT,
        PRIMARY KEY (session_id, number)
    );
    CREATE TABLE rating_assignments (
        session_id  TEXT NOT NULL,
        item        INTEGER NOT NULL,
        rater       TEXT NOT NULL,
        position    INTEGER NOT NULL,
        assigned    TEXT NOT NULL,
        PRIMARY KEY (session_id, item, rater),
        UNIQUE (session_id, rater, position),
        FOREIGN KEY (session_id, item) REFERENCES rating_items(session_id, number) ON DELETE CASCADE
    );
    CREATE TABLE ratings (
        session_id  TEXT NOT NULL,
        item        INTEGER NOT NULL,
        rater       TEXT NOT NULL,
        criterion   TEXT NOT NULL,
        value       TEXT NOT NULL,
        created     TEXT NOT NULL,
        updated     TEXT NOT NULL,
        UNIQUE (session_id, item, rater, criterion),
        FOREIGN KEY (session_id, item) REFERENCES rating_items(session_id, number) ON DELETE CASCADE
    );
    CREATE INDEX ratings_by_rater ON ratings(session_id, rater);
    """,
]


def connect(path: Path) -> sqlite3.Connection:
    """Open the database, switch on WAL and foreign keys, and apply pending migrations."""
    connection = sqlite3.connect(path, timeout=10, check_same_thread=False)
    connection.row_factory = sqlite3.Row
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA foreign_keys=ON")
    migrate(connection)
    return connection


def migrate(connection: sqlite3.Connection) -> int:
    """Apply the migrations this database has not seen; returns the schema version."""
    current = connection.execute("PRAGMA user_version").fetchone()[0]
    for number, script in enumerate(MIGRATIONS[current:], start=current + 1):
        connection.executescript(f"BEGIN; {script}; PRAGMA user_version={number}; COMMIT;")
    return len(MIGRATIONS)


# SQLite lets one connection write at a time and makes the others retry with growing sleeps (up to 100 ms
# each), so with 8 threads writing at once the unluckiest waited about a second. Threads of one process
# queue on this lock instead and are woken as soon as the writer before them is done; other processes
# (the CLI, jobs) still wait through SQLite's own timeout.
_WRITERS: dict[str, threading.RLock] = {}


@contextmanager
def write_transaction(connection: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One short transaction that reads and then writes: it takes the write lock at its start (BEGIN
    IMMEDIATE), so what it read cannot change before it writes, and a concurrent writer waits instead of
    failing. Committed when the block ends, rolled back on an error."""
    database = connection.execute("PRAGMA database_list").fetchone()[2]
    with _WRITERS.setdefault(database, threading.RLock()):
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            connection.rollback()
            raise
        connection.commit()


def schema_version(path: Path) -> int:
    with closing(sqlite3.connect(path)) as connection:
        return connection.execute("PRAGMA user_version").fetchone()[0]
