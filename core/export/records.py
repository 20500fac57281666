"""Export folders: starting one, completing it, and listing what is there.

    folder, title, settings = records.new_export(workspace, "faq-r16", "merged")   # checked before any job starts
    records.complete(export, manifest)       # the job's last act: export.json, only after the check passed
    records.list_exports(workspace)          # newest first; incomplete ones (running, failed) included

A folder without export.json is never a finished export: choices and the Export tab go by that file
alone, so a half-written, failed or cancelled export can never be mistaken for one. A failed or cancelled
export keeps only its job record (status and log, to say why); its partial files are removed.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.export import formats, source
from core.text import N_
from core.workspace import ExportFolder, Workspace, atomic_write_json, now_iso, read_json

KIND = "export"   # the job kind (core.jobs.worker.JOB_KINDS)


@dataclass(frozen=True)
class ExportRecord:
    export_id: str
    folder: Path
    complete: bool
    format: str = ""
    run_id: str = ""
    created: str = ""
    size_bytes: int = 0
    files: tuple[str, ...] = ()
    verification: dict[str, Any] | None = None


def new_export(workspace: Workspace, run_id: str, format_key: str, name: str = "") -> tuple[Path, str, dict[str, Any]]:
    """The folder, title and job settings of a new export, refused at once (ConfigError) when the run has
    no adapter or this machine cannot make the format."""
    source.load(workspace, run_id)
    chosen = formats.check_available(format_key)
    export_id = workspace.unique_id(workspace.exports_dir, name or f"{run_id}-{format_key}")
    return (workspace.export_dir(export_id), N_(f"export of run '{run_id}' ({chosen.label})"),
            {"run_id": run_id, "format": format_key})


def complete(export: ExportFolder, manifest: dict[str, Any]) -> None:
    atomic_write_json(export.manifest, {"complete": True, "created": now_iso(), **manifest})


def discard_outputs(export: ExportFolder) -> None:
    """Remove everything but the job's record from an export that did not complete."""
    for path in export.root.iterdir() if export.root.is_dir() else []:
        if path.name in ExportFolder.JOB_FILES:
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def read(export: ExportFolder) -> ExportRecord:
    manifest = read_json(export.manifest, {}) or {}
    spec = read_json(export.root / "job.json", {}) or {}
    return ExportRecord(export.export_id, export.root, bool(manifest.get("complete")),
                        manifest.get("kind") or spec.get("format", ""), manifest.get("run_id") or spec.get("run_id", ""),
                        manifest.get("created", ""), int(manifest.get("size_bytes", 0)), tuple(manifest.get("files", ())),
                        manifest.get("verification"))


def list_exports(workspace: Workspace) -> list[ExportRecord]:
    """Every export folder, complete or not, newest first."""
    folders = [path for path in workspace.exports_dir.iterdir() if path.is_dir() and not path.name.startswith(".")] \
        if workspace.exports_dir.is_dir() else []
    return sorted((read(ExportFolder(path)) for path in folders), key=lambda record: record.folder.stat().st_mtime,
                  reverse=True)


def check_in_words(verification: dict[str, Any] | None) -> str:
    """What an export's check found, in a few words (the job's summary, the Export tab's list)."""
    figures = verification or {}
    if "perplexity_change" in figures:
        return N_(f"perplexity {figures['perplexity_change']:+.1%} against the unquantised model")
    if "threshold" in figures:
        return N_(f"same next token as the merged model at {figures['top_token_agreement']:.1%} of positions")
    if "max_abs_logit_diff" in figures:
        return N_(f"logits within {figures['max_abs_logit_diff']:.1e} of the adapter's")
    if "zip_bytes" in figures:
        return N_(f"zip of {figures['zip_bytes'] / 1e6:.1f} MB tested")
    return ""
