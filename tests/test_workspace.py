import json
import sqlite3
import threading
from pathlib import Path

import pytest

from core import db
from core.data import store
from core.errors import WorkspaceError
from core.workspace import Workspace, atomic_write_json, replace_folder, resolve_root, safe_id


@pytest.mark.parametrize("name, expected", [
    ("My FAQ v2", "my-faq-v2"),
    ("../../etc/passwd", "etc-passwd"),
    ("a/b\\c", "a-b-c"),
    ("rm -rf $(x); `y` | z", "rm-rf-x-y-z"),
    ("..", "item"),
    ("诊所问答", "item"),
    ("Café.jsonl", "cafe.jsonl"),
])
def test_safe_id_never_leaves_the_folder(name: str, expected: str):
    assert safe_id(name) == expected


def test_paths_refuse_unsafe_ids(workspace: Workspace):
    for bad in ("../x", "a/b", "", "UPPER", ".hidden/.."):
        with pytest.raises(WorkspaceError):
            workspace.run_dir(bad)
    assert workspace.run_dir("ok-1").parent == workspace.runs_dir


def test_unique_ids(workspace: Workspace):
    first = workspace.unique_id(workspace.runs_dir, "My Run")
    (workspace.runs_dir / first).mkdir()
    assert (first, workspace.unique_id(workspace.runs_dir, "My Run")) == ("my-run", "my-run-2")


def test_root_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("LORA_STUDIO_HOME", str(tmp_path / "env"))
    assert resolve_root() == tmp_path / "env"
    assert resolve_root(tmp_path / "flag") == tmp_path / "flag"
    monkeypatch.delenv("LORA_STUDIO_HOME")
    monkeypatch.chdir(tmp_path)
    assert resolve_root() == tmp_path / "workspace"


def test_atomic_write_leaves_whole_files_only(tmp_path: Path):
    target = tmp_path / "status.json"
    atomic_write_json(target, {"step": -1, "padding": "x" * 5000})
    done = threading.Event()
    seen: list[dict] = []
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            while not done.is_set():
                seen.append(json.loads(target.read_text()))
        except BaseException as error:  # a missing or half-written file: handed to the test below
            errors.append(error)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        # Keep writing until the reader has read many times, so reads land between writes on any machine.
        step = 0
        while len(seen) < 500 and not errors:
            atomic_write_json(target, {"step": step, "padding": "x" * 5000})
            step += 1
    finally:
        done.set()
        thread.join()
    assert not errors, f"the reader saw a broken file: {errors[0]!r}"
    assert all(len(item["padding"]) == 5000 for item in seen)
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]


def write_version(folder: Path, version: int) -> Path:
    folder.mkdir()
    (folder / "weights.bin").write_bytes(b"w" * 4096)
    (folder / "version.txt").write_text(str(version))
    return folder


def test_replaced_folder_is_never_missing_and_ends_as_the_last_version(tmp_path: Path):
    target, staging = tmp_path / "adapter", tmp_path / ".adapter.saving"
    replace_folder(write_version(staging, 0), target)  # nothing there yet: a plain rename
    stop, first_read = threading.Event(), threading.Event()
    versions: list[int] = []
    failures: list[BaseException] = []

    def reader() -> None:
        while not stop.is_set():
            try:
                assert target.is_dir(), "the folder was missing"
                versions.append(int((target / "version.txt").read_text()))
            except BaseException as error:  # noqa: BLE001 - every failure is reported by the test
                failures.append(error)
            first_read.set()

    thread = threading.Thread(target=reader)
    thread.start()
    first_read.wait()
    for version in range(1, 201):
        replace_folder(write_version(staging, version), target)
    stop.set()
    thread.join()
    assert failures == []
    assert versions == sorted(versions)  # never an old folder after a newer one
    assert (target / "version.txt").read_text() == "200" and (target / "weights.bin").stat().st_size == 4096
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter"]  # the old copies are gone


def test_replace_folder_without_an_atomic_exchange_still_ends_with_the_new_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr("core.workspace._exchange", lambda first, second: False)
    target = write_version(tmp_path / "model", 1)
    replace_folder(write_version(tmp_path / ".model.converting", 2), target)
    assert (target / "version.txt").read_text() == "2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_replace_folder_needs_the_new_folder(tmp_path: Path):
    target = write_version(tmp_path / "adapter", 1)
    with pytest.raises(FileNotFoundError):
        replace_folder(tmp_path / ".adapter.saving", target)
    assert (target / "version.txt").read_text() == "1"


def test_database_is_wal_and_migrations_are_idempotent(workspace: Workspace):
    connection = workspace.connect()
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.migrate(connection) == len(db.MIGRATIONS)
    connection.close()
    assert db.schema_version(workspace.db_path) == len(db.MIGRATIONS)


def test_demo_dataset_is_stored_byte_for_byte_and_survives_a_restart(tmp_path: Path):
    first = Workspace.open(tmp_path / "ws")
    store.ensure_demo_dataset(first)
    folder = first.dataset_dir(store.DEMO_DATASET_ID)
    assert (folder / "raw.jsonl").read_bytes() == store.DEMO_DATASET_FILE.read_bytes()
    report = json.loads((folder / "v1" / "report.json").read_text())
    assert report["kept"] + report["rejected"] == report["rows_read"] > 250
    kept = [json.loads(line) for line in (folder / "v1" / "data.jsonl").read_text().splitlines()]
    assert all(row["messages"][-1]["role"] == "assistant" for row in kept)

    reopened = Workspace.open(tmp_path / "ws")   # a restart: same folder, new objects
    store.ensure_demo_dataset(reopened)           # idempotent
    listed = store.list_datasets(reopened)
    assert [(d.id, d.rows) for d in listed] == [(store.DEMO_DATASET_ID, report["kept"])]


def test_unwritable_workspace_gets_a_clear_message(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(WorkspaceError, match="Cannot create the workspace"):
        Workspace.open(blocker / "ws")


def test_database_rejects_foreign_key_orphans(workspace: Workspace):
    connection = workspace.connect()
    with pytest.raises(sqlite3.IntegrityError):
        connection.execute("INSERT INTO dataset_versions (dataset_id, version, parent, rows, sha256, note, created)"
                           " VALUES ('nope', 1, NULL, 0, '', '', '')")
    connection.close()
