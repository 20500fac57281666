"""The SQLite index of the workspace: a connection in WAL mode and numbered migrations.

Folders on disk are the truth; these tables index them so that lists and searches are fast. Later
features add a migration at the end of MIGRATIONS; applied ones are never edited.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
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


def schema_version(path: Path) -> int:
    with closing(sqlite3.connect(path)) as connection:
        return connection.execute("PRAGMA user_version").fetchone()[0]
