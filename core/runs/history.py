"""Run history: one row per run, renaming and deleting runs, and what differs between two runs' configs.

Everything is read from the run folders (core.runs.records), the truth; the database index follows each change.
A run that is queued, training or stopping — in this process or any other — is never renamed or deleted.
"""

from __future__ import annotations

import shutil
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.config import field_names, flat_values
from core.errors import JobBusyError, WorkspaceError
from core.runs import records
from core.text import N_
from core.workspace import RunFolder, Workspace, atomic_write_json, now_iso, read_json


@dataclass(frozen=True)
class RunRow:
    run_id: str
    name: str
    model: str
    dataset: str
    state: str
    best_eval_loss: float | None
    tokens_per_s: float | None
    duration_s: float | None
    created: str


def table(workspace: Workspace) -> list[RunRow]:
    """Every run, newest first, with the figures of its summary (or its progress so far)."""
    rows = []
    for status in records.list_runs(workspace):
        folder = workspace.run_folder(status.run_id)
        summary = read_json(folder.summary, {}) or {}
        try:
            config = records.load_config(folder)
            model, dataset = config.model.name, records.dataset_label(config)
        except Exception:  # noqa: BLE001 - a run with a damaged config still belongs in the list
            model = dataset = "?"
        rows.append(RunRow(
            run_id=status.run_id, name=status.name, model=model, dataset=dataset, state=status.state,
            best_eval_loss=summary.get("best_eval_loss", status.eval_loss), tokens_per_s=summary.get("tokens_per_s"),
            duration_s=summary.get("wall_s", _seconds_between(status.started, status.updated)),
            created=status.created))
    return rows


def _seconds_between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def _idle_folder(workspace: Workspace, run_id: str, action: str) -> RunFolder:
    folder = workspace.run_folder(run_id)
    if not folder.root.is_dir():
        raise WorkspaceError(f"There is no run '{run_id}'.", "Pick a run from the history table.")
    if records.read_status(folder).active:
        raise JobBusyError(f"Run '{run_id}' is still training, so it cannot be {action}.",
                           "Stop it or wait until it ends, then try again.")
    return folder


def rename(workspace: Workspace, run_id: str, new_name: str | None) -> None:
    """Give a run a new display name (its id and folder stay, so links and exports keep working)."""
    new_name = (new_name or "").strip()
    if not new_name:
        raise WorkspaceError("A run needs a name.", "Type the new name, then rename.")
    folder = _idle_folder(workspace, run_id, N_("renamed"))
    status = read_json(folder.status, {}) or {}
    atomic_write_json(folder.status, {**status, "name": new_name, "updated": now_iso()})
    with closing(workspace.connect()) as connection, connection:
        connection.execute("UPDATE runs SET name = ? WHERE id = ?", (new_name, run_id))


def delete(workspace: Workspace, run_id: str) -> None:
    """Remove one run's folder and index row; no other run is touched."""
    folder = _idle_folder(workspace, run_id, N_("deleted"))
    shutil.rmtree(folder.root)
    with closing(workspace.connect()) as connection, connection:
        connection.execute("DELETE FROM runs WHERE id = ?", (run_id,))


def config_diff(workspace: Workspace, run_a: str, run_b: str) -> list[tuple[str, Any, Any]]:
    """(field, value in A, value in B) for every config field the two runs set differently."""
    a = flat_values(records.load_config(workspace.run_folder(run_a)))
    b = flat_values(records.load_config(workspace.run_folder(run_b)))
    return [(name, a[name], b[name]) for name in field_names() if a[name] != b[name]]
