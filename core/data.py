"""Datasets: store an upload byte-for-byte, normalise it into conversations, keep numbered versions.

Every row becomes one conversation in the OpenAI messages shape, the one form the rest of the studio
reads:  {"messages": [{"role": "system"|"user"|"assistant", "content": str}, ...], "source_line": N}
"""

from __future__ import annotations

import hashlib
import json
import shutil
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from core.errors import DataError
from core.workspace import Workspace, atomic_write_json, now_iso

ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"
DEMO_DATASET_ID = "demo-clinic-faq"
DEMO_DATASET_FILE = ASSETS_DIR / "demo" / "clinic_faq.jsonl"


@dataclass(frozen=True)
class DatasetSummary:
    id: str
    name: str
    source_file: str
    latest_version: int
    rows: int
    created: str


def _conversation(record: object) -> list[dict[str, str]]:
    """The messages of one {"prompt","response"} or {"messages": [...]} record; raises ValueError."""
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object, got {type(record).__name__}")
    if "messages" in record:
        messages = record["messages"]
        if not isinstance(messages, list) or not all(
                isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
                for m in messages):
            raise ValueError("'messages' must be a list of {role, content} objects with text content")
        return [{"role": m["role"], "content": m["content"]} for m in messages]
    prompt, response = record.get("prompt"), record.get("response")
    if not isinstance(prompt, str) or not isinstance(response, str):
        raise ValueError("expected text fields 'prompt' and 'response'")
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]


def load_conversations(path: Path) -> list[list[dict[str, str]]]:
    """Every conversation in a dataset file (a version's data.jsonl, or a JSONL of {"prompt","response"}
    or {"messages"} rows) as a list of messages. This is what training and evaluation read."""
    conversations = []
    try:
        lines = Path(path).read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        raise DataError(f"Dataset file {path} does not exist.", "Pick a dataset version in the Data tab or fix data.train_path.") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            conversations.append(_conversation(json.loads(line)))
        except ValueError as error:
            raise DataError(f"{Path(path).name}, line {number}: {error}.", "Clean the file in the Data tab first.") from None
    return conversations


def import_jsonl(workspace: Workspace, source: Path, name: str, dataset_id: str | None = None) -> DatasetSummary:
    """Keep the file as received in datasets/<id>/raw.jsonl and write version 1 beside it.

    Rows that do not parse go to v1/rejects.jsonl with their line number and reason, never dropped.
    """
    raw_bytes = source.read_bytes()
    try:
        text = raw_bytes.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DataError(f"{source.name} is not UTF-8 text (byte {error.start}).", "Save it as UTF-8 and upload again.") from None
    dataset_id = dataset_id or workspace.unique_id(workspace.datasets_dir, name)
    folder = workspace.dataset_dir(dataset_id)
    version_dir = workspace.dataset_version_dir(dataset_id, 1)
    version_dir.mkdir(parents=True)
    (folder / "raw.jsonl").write_bytes(raw_bytes)

    kept, rejects = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            kept.append({"messages": _conversation(json.loads(line)), "source_line": number})
        except ValueError as error:  # json.JSONDecodeError is a ValueError too
            rejects.append({"source_line": number, "reasons": ["invalid"], "detail": str(error), "text": line})
    data = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in kept)
    (version_dir / "data.jsonl").write_text(data, encoding="utf-8")
    (version_dir / "rejects.jsonl").write_text(
        "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rejects), encoding="utf-8")
    sha256 = hashlib.sha256(data.encode()).hexdigest()
    created = now_iso()
    atomic_write_json(version_dir / "report.json", {
        "rows_read": len(kept) + len(rejects), "kept": len(kept), "rejected": len(rejects),
        "parent": None, "steps": ["parse"], "sha256": sha256, "created": created})
    with closing(workspace.connect()) as connection, connection:
        connection.execute("INSERT INTO datasets (id, name, source_file, created) VALUES (?, ?, ?, ?)",
                           (dataset_id, name, source.name, created))
        connection.execute("INSERT INTO dataset_versions (dataset_id, version, parent, rows, sha256, note, created)"
                           " VALUES (?, 1, NULL, ?, ?, 'as uploaded', ?)", (dataset_id, len(kept), sha256, created))
    return DatasetSummary(dataset_id, name, source.name, 1, len(kept), created)


def ensure_demo_dataset(workspace: Workspace) -> None:
    """Put the built-in demo dataset into a workspace that does not have it yet."""
    if workspace.dataset_dir(DEMO_DATASET_ID).exists():
        return
    try:
        import_jsonl(workspace, DEMO_DATASET_FILE, "Demo: clinic patient FAQ (zh/en)", DEMO_DATASET_ID)
    except BaseException:
        shutil.rmtree(workspace.dataset_dir(DEMO_DATASET_ID), ignore_errors=True)
        raise


def list_datasets(workspace: Workspace) -> list[DatasetSummary]:
    with closing(workspace.connect()) as connection:
        rows = connection.execute(
            "SELECT d.id, d.name, d.source_file, d.created, v.version, v.rows FROM datasets d"
            " JOIN dataset_versions v ON v.dataset_id = d.id"
            " AND v.version = (SELECT MAX(version) FROM dataset_versions WHERE dataset_id = d.id)"
            " ORDER BY d.created, d.id").fetchall()
    return [DatasetSummary(r["id"], r["name"], r["source_file"], r["version"], r["rows"], r["created"]) for r in rows]
