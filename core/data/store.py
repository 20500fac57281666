"""Datasets: store an upload byte-for-byte, keep numbered versions with lineage, and never lose a row.

    datasets/<id>/raw.<ext>             the upload exactly as received
    datasets/<id>/v<N>/data.jsonl       the rows of version N, one conversation per line:
                                        {"messages": [{"role", "content"}, ...], "source_line": N, ...}
    datasets/<id>/v<N>/validation.jsonl the validation rows, in a version made by a split
    datasets/<id>/v<N>/rejects.jsonl    every row set aside in this version's lineage, with its source
                                        line, reasons, details and the version that set it aside
    datasets/<id>/v<N>/report.json      what made the version: parent, kind, steps, parameters, sha256,
                                        counts per reason, contradiction groups

Version 1 holds every row that could be read; each later version is made from one parent by cleaning,
restoring rejects, splitting or mixing. A version's data + validation + rejects account for every row
read into its lineage. A version is written in a hidden folder and renamed into place, so a crash never
leaves half a version; the SQLite index (datasets, dataset_versions) follows the folders.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import uuid
from collections.abc import Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass, fields, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from core.data import cleaning, formats, lengths, splits
from core.data.reports import MixFigures, StepReport, VersionReport
from core.errors import DataError
from core.models import modeling
from core.progress import QUIET, Progress
from core.text import N_
from core.workspace import ASSETS_DIR, Workspace, atomic_write_json, now_iso, read_json

DEMO_DATASET_ID = "demo-clinic-faq"
HARD_EXAMPLES_ID = "hard-examples"
DEMO_DATASET_FILE = ASSETS_DIR / "demo" / "clinic_faq.jsonl"
DATA_FILE, VALIDATION_FILE, REJECTS_FILE, REPORT_FILE = "data.jsonl", "validation.jsonl", "rejects.jsonl", "report.json"
DATASET_FILE = "dataset.json"
_VERSION_ATTEMPTS = 20


@dataclass(frozen=True)
class DatasetSummary:
    id: str
    name: str
    source_file: str
    latest_version: int
    rows: int
    created: str


@dataclass(frozen=True)
class VersionSummary:
    dataset_id: str
    version: int
    parent: int | None
    kind: str            # upload, clean, restore, split or mix
    rows: int            # rows in data.jsonl (the training rows of a split version)
    validation_rows: int
    rejected: int        # rows this version set aside (its parent's rejects are carried too)
    note: str
    sha256: str
    created: str


# ---------------------------------------------------------------- reading and writing rows

def _write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> str:
    """Write one JSON object per line; returns the sha256 of the bytes written."""
    digest = hashlib.sha256()
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            line = json.dumps(row, ensure_ascii=False) + "\n"
            digest.update(line.encode("utf-8"))
            handle.write(line)
    return digest.hexdigest()


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def load_conversations(path: Path) -> list[list[dict[str, str]]]:
    """Every conversation in a dataset file (a version's data.jsonl, or a JSONL file in any accepted
    record format) as a list of messages. This is what training and evaluation read."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"Dataset file {path} does not exist.",
                        "Pick a dataset version in the Data tab or fix data.train_path.") from None
    conversations = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            conversations.append(formats.conversation(json.loads(line))[1])
        except ValueError as error:  # json.JSONDecodeError is a ValueError too
            raise DataError(f"{Path(path).name}, line {number}: {error}.", "Clean the file in the Data tab first.") from None
    return conversations


def version_dir(workspace: Workspace, dataset_id: str, version: int) -> Path:
    folder = workspace.dataset_version_dir(dataset_id, version)
    if not (folder / REPORT_FILE).is_file():
        raise DataError(f"Dataset '{dataset_id}' has no version {version}.", "Pick a version from the list.")
    return folder


def read_rows(workspace: Workspace, dataset_id: str, version: int) -> list[dict[str, Any]]:
    """All rows of a version: its data, then its validation rows (split versions)."""
    folder = version_dir(workspace, dataset_id, version)
    return _read_jsonl(folder / DATA_FILE) + _read_jsonl(folder / VALIDATION_FILE)


def read_rejects(workspace: Workspace, dataset_id: str, version: int) -> list[dict[str, Any]]:
    return _read_jsonl(version_dir(workspace, dataset_id, version) / REJECTS_FILE)


def read_report(workspace: Workspace, dataset_id: str, version: int) -> VersionReport:
    return VersionReport.from_json(read_json(version_dir(workspace, dataset_id, version) / REPORT_FILE))


# ---------------------------------------------------------------- reports

def _rows_of(parsed: formats.ParseResult) -> list[dict[str, Any]]:
    return [{"messages": row.messages, "source_line": row.source_line} for row in parsed.rows]


def _invalid_rejects(parsed: formats.ParseResult) -> list[dict[str, Any]]:
    return [{"source_line": row.source_line, "reasons": ["invalid"], "details": [row.detail], "text": row.text}
            for row in parsed.invalid]


def _clean_report(rows_read: int, result: cleaning.CleanResult, options: cleaning.CleanOptions,
                  counter: lengths.TokenCounter | None, invalid: int = 0, **more: Any) -> StepReport:
    """What cleaning did; with a token counter, the lengths of the kept rows too."""
    sample = lengths.length_sample(counter, [row["messages"] for row in result.kept]) if counter else None
    return StepReport(rows_read=rows_read, kept=len(result.kept), rejected=len(result.rejected) + invalid,
                      reasons={**result.reasons, "invalid": result.reasons["invalid"] + invalid}, flags=result.flags,
                      contradiction_groups=result.groups, steps=list(options.steps), parameters=options.parameters(),
                      lengths=sample, **more)


@lru_cache(maxsize=4)
def _tokenizer(workspace: Workspace, model: str) -> Any:
    return modeling.load_tokenizer(model, workspace)


def token_counter(workspace: Workspace, model: str = modeling.DEFAULT_MODEL,
                  template: str = "auto") -> lengths.TokenCounter:
    """Counts tokens with `model`'s tokenizer and chat template (tokenizers are loaded once per model)."""
    return lengths.TokenCounter(_tokenizer(workspace, model), template)  # type: ignore[arg-type]


# ---------------------------------------------------------------- files outside the workspace (CLI)

@dataclass(frozen=True)
class FileCheck:
    report: StepReport
    kept: list[dict[str, Any]]
    rejects: list[dict[str, Any]]   # unreadable and cleaned-out rows, in file order

    def to_json(self) -> dict[str, Any]:
        """The report with the line, reasons and details of every reject (`lora-studio data … --json`)."""
        return {**self.report.to_json(), "rejected_rows": [{key: row[key] for key in ("source_line", "reasons", "details")}
                                                           for row in self.rejects]}


def read_file(path: Path, mapping: formats.CsvMapping | None = None,
              max_bytes: int = formats.MAX_UPLOAD_BYTES) -> formats.ParseResult:
    """Every record of a file outside the workspace, read or rejected (DataError if the file cannot be read)."""
    return formats.parse(formats.read_upload(path, max_bytes), Path(path).name, mapping)


def check_file(path: Path, parsed: formats.ParseResult, options: cleaning.CleanOptions,
               counter: lengths.TokenCounter | None) -> FileCheck:
    """Clean the rows read from `path` without writing anything."""
    result = cleaning.clean(_rows_of(parsed), options, counter)
    report = _clean_report(parsed.rows_read, result, options, counter, invalid=len(parsed.invalid),
                           source_file=Path(path).name, file_format=parsed.file_format,
                           record_formats=parsed.record_formats)
    rejects = sorted(_invalid_rejects(parsed) + result.rejected, key=lambda row: row["source_line"])
    return FileCheck(report, result.kept, rejects)


def clean_file(path: Path, parsed: formats.ParseResult, out_dir: Path, options: cleaning.CleanOptions,
               counter: lengths.TokenCounter | None) -> FileCheck:
    """Clean the rows read from `path` into out_dir/{data.jsonl, rejects.jsonl, report.json}."""
    checked = check_file(path, parsed, options, counter)
    out_dir.mkdir(parents=True, exist_ok=True)
    checked = replace(checked, report=replace(checked.report, sha256=_write_jsonl(out_dir / DATA_FILE, checked.kept)))
    _write_jsonl(out_dir / REJECTS_FILE, checked.rejects)
    atomic_write_json(out_dir / REPORT_FILE, checked.report.to_json())
    return checked


def summary_lines(checked: FileCheck, limit: int = 20) -> list[str]:
    """The report in a few lines of plain text, with the first `limit` rejected lines."""
    report = checked.report
    lines = [f"{report.source_file}: {report.rows_read} rows read, {report.kept} kept, {report.rejected} rejected"]
    lines += [f"  {reason:<15} {count}" for reason, count in (report.reasons or {}).items()]
    flags = ", ".join(f"{name} {count}" for name, count in (report.flags or {}).items() if count)
    if flags:
        lines.append(f"flagged, kept: {flags}")
    for group in report.contradiction_groups or []:
        lines.append(f"contradiction {group.id}: lines {', '.join(map(str, group.source_lines))} → {group.resolution}")
    for row in checked.rejects[:limit]:
        lines.append(f"line {row['source_line']}: {', '.join(row['reasons'])}: {'; '.join(row['details'])}")
    if len(checked.rejects) > limit:
        lines.append(f"… and {len(checked.rejects) - limit} more rejected rows")
    return lines


# ---------------------------------------------------------------- versions in the workspace

def _next_version(folder: Path) -> int:
    numbers = [int(p.name[1:]) for p in folder.glob("v*") if p.name[1:].isdigit()]
    return max(numbers, default=0) + 1


def _write_version(workspace: Workspace, dataset_id: str, parent: int | None, kind: str, step: StepReport,
                   rows: Sequence[dict[str, Any]], carried: Sequence[dict[str, Any]],
                   rejected: Sequence[dict[str, Any]] = (), validation: Sequence[dict[str, Any]] = (),
                   note: str = "") -> VersionSummary:
    """Write a new version (the next free number) atomically and index it. Its rejects are the
    parent's (`carried`) and the rows this step set aside (`rejected`, stamped with the new version)."""
    folder = workspace.dataset_dir(dataset_id)
    staging = folder / f".staging-{uuid.uuid4().hex}"
    staging.mkdir(parents=True)
    step_values = {field.name: getattr(step, field.name) for field in fields(step)}
    try:
        sha256 = _write_jsonl(staging / DATA_FILE, rows)
        validation_sha256 = _write_jsonl(staging / VALIDATION_FILE, validation) if validation else None
        for _ in range(_VERSION_ATTEMPTS):   # another writer may take a number between the look and the rename
            version, created = _next_version(folder), now_iso()
            _write_jsonl(staging / REJECTS_FILE, [*carried, *({**row, "version": version} for row in rejected)])
            report = VersionReport(**{**step_values, "sha256": sha256}, validation_sha256=validation_sha256,
                                   dataset=dataset_id, version=version, parent=parent, kind=kind, note=note,
                                   created=created, rejects_total=len(carried) + len(rejected))
            atomic_write_json(staging / REPORT_FILE, report.to_json())
            try:
                os.rename(staging, folder / f"v{version}")
                break
            except OSError:
                continue
        else:
            raise DataError(f"Could not save a new version of '{dataset_id}': too many versions written at once.", "Try again.")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    summary = VersionSummary(dataset_id, version, parent, kind, len(rows), len(validation), len(rejected), note,
                             sha256, created)
    try:
        with closing(workspace.connect()) as connection, connection:
            connection.execute(
                "INSERT INTO dataset_versions (dataset_id, version, parent, rows, sha256, note, created, kind, rejected,"
                " validation_rows) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (dataset_id, version, parent, summary.rows, sha256, note, created, kind, summary.rejected,
                 summary.validation_rows))
    except BaseException:
        shutil.rmtree(folder / f"v{version}", ignore_errors=True)
        raise
    return summary


def import_upload(workspace: Workspace, path: Path, name: str | None = None, file_name: str | None = None,
                  mapping: formats.CsvMapping | None = None, dataset_id: str | None = None,
                  max_bytes: int = formats.MAX_UPLOAD_BYTES) -> VersionSummary:
    """Store an upload byte-for-byte as datasets/<id>/raw.<ext>, then write version 1: every row that
    can be read, and the rows that cannot as its rejects (line number and reason each).

    `file_name` is the name the user's file had (uploads arrive under temporary names); `name` the
    dataset's display name (default: the file name). Files that cannot be read at all raise DataError
    and leave nothing behind; datasets already stored are never touched.
    """
    file_name = Path(file_name or Path(path).name).name
    raw = formats.read_upload(path, max_bytes, file_name)
    kind = formats.file_format(file_name)
    name = (name or "").strip() or Path(file_name).stem or "dataset"
    if dataset_id is None:
        dataset_id = _new_dataset_folder(workspace, name)
    else:
        workspace.dataset_dir(dataset_id).mkdir(parents=True)  # FileExistsError: it is taken
    folder = workspace.dataset_dir(dataset_id)
    try:
        (folder / f"raw.{kind}").write_bytes(raw)
        parsed = formats.parse(raw, file_name, mapping)
        _register(workspace, dataset_id, name, file_name)
        report = StepReport(rows_read=parsed.rows_read, kept=len(parsed.rows), rejected=len(parsed.invalid),
                            reasons={**dict.fromkeys(cleaning.REASONS, 0), "invalid": len(parsed.invalid)},
                            flags={}, contradiction_groups=[], steps=["parse"],
                            parameters={"csv_mapping": mapping.__dict__ if mapping else None},
                            source_file=file_name, file_format=parsed.file_format,
                            record_formats=parsed.record_formats, raw_sha256=hashlib.sha256(raw).hexdigest())
        return _write_version(workspace, dataset_id, None, "upload", report, _rows_of(parsed), [],
                              _invalid_rejects(parsed), note="as uploaded")
    except BaseException:
        _forget_dataset(workspace, dataset_id)
        raise


def _register(workspace: Workspace, dataset_id: str, name: str, source_file: str) -> None:
    """dataset.json in the dataset's folder (what the index must never be the only keeper of), and its row."""
    identity = {"name": name, "source_file": source_file, "created": now_iso()}
    atomic_write_json(workspace.dataset_dir(dataset_id) / DATASET_FILE, identity)
    with closing(workspace.connect()) as connection, connection:
        connection.execute("INSERT INTO datasets (id, name, source_file, created) VALUES (?, ?, ?, ?)",
                           (dataset_id, identity["name"], identity["source_file"], identity["created"]))


def reindex(workspace: Workspace) -> tuple[int, int]:
    """Rebuild the datasets index from the folders (after the database was lost or copied in by hand);
    returns (datasets, versions) indexed. Folders are the truth: rows without a folder go."""
    found: list[tuple[str, dict[str, Any], list[VersionReport]]] = []
    for folder in sorted(path for path in workspace.datasets_dir.iterdir() if path.is_dir()):
        reports = [VersionReport.from_json(read_json(version / REPORT_FILE))
                   for version in sorted(folder.glob("v*/")) if (version / REPORT_FILE).is_file()]
        if not reports:
            continue
        raw = sorted(folder.glob("raw.*"))
        identity = read_json(folder / DATASET_FILE) or {   # datasets made before dataset.json existed
            "name": folder.name, "source_file": reports[0].source_file or (raw[0].name if raw else ""),
            "created": reports[0].created}
        found.append((folder.name, identity, sorted(reports, key=lambda report: report.version)))
    with closing(workspace.connect()) as connection, connection:
        connection.execute("DELETE FROM dataset_versions")
        connection.execute("DELETE FROM datasets")
        for dataset_id, identity, reports in found:
            connection.execute("INSERT INTO datasets (id, name, source_file, created) VALUES (?, ?, ?, ?)",
                               (dataset_id, identity["name"], identity["source_file"], identity["created"]))
            for report in reports:
                folder = workspace.dataset_version_dir(dataset_id, report.version)
                connection.execute(
                    "INSERT INTO dataset_versions (dataset_id, version, parent, rows, sha256, note, created, kind,"
                    " rejected, validation_rows) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (dataset_id, report.version, report.parent, _count_lines(folder / DATA_FILE), report.sha256,
                     report.note, report.created, report.kind, report.rejected,
                     _count_lines(folder / VALIDATION_FILE)))
    return len(found), sum(len(reports) for _, _, reports in found)


def _count_lines(path: Path) -> int:
    if not path.is_file():
        return 0
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())


def _new_dataset_folder(workspace: Workspace, name: str) -> str:
    """A fresh dataset id and its folder, created here so that two uploads never share one."""
    for _ in range(_VERSION_ATTEMPTS):
        dataset_id = workspace.unique_id(workspace.datasets_dir, name)
        try:
            workspace.dataset_dir(dataset_id).mkdir(parents=True)
            return dataset_id
        except FileExistsError:
            continue
    raise DataError(f"Could not find a free name for dataset '{name}'.", "Give it another name.")


def _forget_dataset(workspace: Workspace, dataset_id: str) -> None:
    shutil.rmtree(workspace.dataset_dir(dataset_id), ignore_errors=True)
    with closing(workspace.connect()) as connection, connection:
        connection.execute("DELETE FROM datasets WHERE id = ?", (dataset_id,))


def check_version(workspace: Workspace, dataset_id: str, version: int, options: cleaning.CleanOptions,
                  model: str = modeling.DEFAULT_MODEL, progress: Progress = QUIET) -> StepReport:
    """What cleaning a version with `options` would do, without writing anything."""
    counter = token_counter(workspace, model) if "too_long" in options.steps else None
    rows = read_rows(workspace, dataset_id, version)
    return _clean_report(len(rows), cleaning.clean(rows, options, counter, progress), options, counter)


def clean_version(workspace: Workspace, dataset_id: str, version: int, options: cleaning.CleanOptions,
                  model: str = modeling.DEFAULT_MODEL, progress: Progress = QUIET) -> VersionSummary:
    """A new version: the parent's rows cleaned with `options` (contradiction groups resolved as the
    options say); the rows set aside join the parent's rejects. Cancelled (through `progress`) before
    anything is written, it leaves the dataset as it was."""
    counter = token_counter(workspace, model) if "too_long" in options.steps else None
    rows = read_rows(workspace, dataset_id, version)
    result = cleaning.clean(rows, options, counter, progress)
    report = _clean_report(len(rows), result, options, counter)
    report = replace(report, parameters={**report.parameters, "model": model})
    note = f"cleaned: {report.kept} kept, {report.rejected} set aside"
    return _write_version(workspace, dataset_id, version, "clean", report, result.kept,
                          read_rejects(workspace, dataset_id, version), result.rejected, note=note)


def restore_rejects(workspace: Workspace, dataset_id: str, version: int, source_lines: Iterable[int]) -> VersionSummary:
    """A new version: the parent's rows plus the chosen rejects, back in file order and marked
    "restored" so that later cleaning leaves them alone."""
    wanted = set(source_lines)
    if not wanted:
        raise DataError("No rows chosen to restore.", "Enter the line numbers of the rejects to bring back, e.g. 31, 84.")
    rejects = read_rejects(workspace, dataset_id, version)
    chosen = [row for row in rejects if row["source_line"] in wanted]
    unreadable = sorted(row["source_line"] for row in chosen if "messages" not in row)
    missing = sorted(wanted - {row["source_line"] for row in chosen})
    if missing:
        raise DataError(f"Line(s) {', '.join(map(str, missing))} are not among the rejects of v{version}.",
                        "Pick line numbers from the rejects table.")
    if unreadable:
        raise DataError(f"Line(s) {', '.join(map(str, unreadable))} could not be read from the file, so there is no "
                        "conversation to restore.", "Fix those lines in the file and upload it again.")
    restored = [{key: value for key, value in row.items() if key not in ("reasons", "details", "version")}
                | {"restored": True} for row in chosen]
    rows = sorted(read_rows(workspace, dataset_id, version) + restored, key=lambda row: row["source_line"])
    report = StepReport(rows_read=len(rows) - len(restored), kept=len(rows), rejected=0, restored=len(restored),
                        steps=["restore"], parameters={"source_lines": sorted(wanted)})
    remaining = [row for row in rejects if row["source_line"] not in wanted]
    return _write_version(workspace, dataset_id, version, "restore", report, rows, remaining,
                          note=f"restored {len(restored)} row(s)")


def split_version(workspace: Workspace, dataset_id: str, version: int, validation_ratio: float, seed: int = 0,
                  threshold: float = 0.6) -> VersionSummary:
    """A new version whose data.jsonl is the training part and validation.jsonl the rest, with no
    validation prompt a near-duplicate of a training prompt (see core.data.splits)."""
    rows = read_rows(workspace, dataset_id, version)
    split = splits.split(rows, splits.prompts_of(rows), validation_ratio, seed, threshold)
    report = StepReport(rows_read=len(rows), kept=len(rows), rejected=0, steps=["split"],
                        parameters={"validation_ratio": validation_ratio, "seed": seed, "threshold": threshold},
                        split=split.figures())
    return _write_version(workspace, dataset_id, version, "split", report, split.train, read_rejects(
        workspace, dataset_id, version), validation=split.validation,
        note=f"split: {len(split.train)} train, {len(split.validation)} validation")


def mix_versions(workspace: Workspace, dataset_id: str, version: int, other_id: str, other_version: int,
                 ratio: tuple[int, int], seed: int = 0) -> VersionSummary:
    """A new version of `dataset_id`: all its rows plus rows of the other dataset's version so that the
    two make up `ratio` (e.g. 8:2) of the result (see core.data.splits.mix). The validation rows of a split
    version stay validation rows: they are carried over, never mixed into the training rows."""
    folder = version_dir(workspace, dataset_id, version)
    base, validation = _read_jsonl(folder / DATA_FILE), _read_jsonl(folder / VALIDATION_FILE)
    other = [{**row, "source": f"{other_id}/v{other_version}"} for row in read_rows(workspace, other_id, other_version)]
    mixed, taken = splits.mix(base, other, ratio, random.Random(seed))
    report = StepReport(rows_read=len(base) + len(other), kept=len(mixed), rejected=0, steps=["mix"],
                        parameters={"other": f"{other_id}/v{other_version}", "ratio": list(ratio), "seed": seed},
                        mix=MixFigures(base_rows=len(base), other_rows=taken, other_available=len(other)))
    return _write_version(workspace, dataset_id, version, "mix", report, mixed, read_rejects(workspace, dataset_id, version),
                          validation=validation, note=N_(f"mixed {ratio[0]}:{ratio[1]} with {other_id} v{other_version}"))


def add_hard_examples(workspace: Workspace, conversations: Sequence[list[formats.Message]],
                      source: dict[str, Any]) -> VersionSummary:
    """A new version of the workspace's hard-examples dataset: its latest rows plus `conversations` (each a
    prompt with the answer it should have had), with `source` recorded as their lineage (e.g. {"run": …,
    "eval": …} or {"rating_session": …}). A prompt already there gets the new answer instead of a twin.

    Evaluation and rating sessions send their worst answers here; mixing this dataset into the training
    data (mix_versions, 8:2 by default) and training again closes the loop.
    """
    if not conversations:
        raise DataError("No examples were chosen.", "Select the items to send first.")
    folder = workspace.dataset_dir(HARD_EXAMPLES_ID)
    if not folder.exists():
        folder.mkdir(parents=True)
        _register(workspace, HARD_EXAMPLES_ID, "Hard examples (from evaluations and ratings)", "")
    latest = max((summary.version for summary in versions(workspace, HARD_EXAMPLES_ID)), default=None)
    earlier = read_rows(workspace, HARD_EXAMPLES_ID, latest) if latest else []
    added: list[dict[str, Any]] = [{"messages": list(messages), "source": source} for messages in conversations]
    prompts = {formats.text_of(row["messages"], "user") for row in added}
    kept = [row for row in earlier if formats.text_of(row["messages"], "user") not in prompts]
    replaced = [{**row, "reasons": ["replaced"], "details": ["the same prompt came again with a newer answer"]}
                for row in earlier if formats.text_of(row["messages"], "user") in prompts]
    report = StepReport(rows_read=len(earlier) + len(added), kept=len(kept) + len(added), rejected=len(replaced),
                        steps=["hard-examples"], parameters={"source": source, "added": len(added)})
    carried = read_rejects(workspace, HARD_EXAMPLES_ID, latest) if latest else []
    return _write_version(workspace, HARD_EXAMPLES_ID, latest, "hard-examples", report, kept + added, carried,
                          replaced, note=f"{len(added)} example(s) from "
                                         f"{', '.join(f'{key} {value}' for key, value in source.items())}")


def versions(workspace: Workspace, dataset_id: str) -> list[VersionSummary]:
    with closing(workspace.connect()) as connection:
        rows = connection.execute(
            "SELECT version, parent, kind, rows, validation_rows, rejected, note, sha256, created"
            " FROM dataset_versions WHERE dataset_id = ? ORDER BY version", (dataset_id,)).fetchall()
    return [VersionSummary(dataset_id, r["version"], r["parent"], r["kind"], r["rows"], r["validation_rows"],
                           r["rejected"], r["note"], r["sha256"], r["created"]) for r in rows]


# ---------------------------------------------------------------- the demo and the list

def ensure_demo_dataset(workspace: Workspace) -> None:
    """Put the built-in demo dataset into a workspace that does not have it yet."""
    if workspace.dataset_dir(DEMO_DATASET_ID).exists():
        return
    try:
        import_upload(workspace, DEMO_DATASET_FILE, "Demo: clinic patient FAQ (zh/en)", dataset_id=DEMO_DATASET_ID)
    except FileExistsError:
        pass  # another process is adding it right now


def list_datasets(workspace: Workspace) -> list[DatasetSummary]:
    with closing(workspace.connect()) as connection:
        rows = connection.execute(
            "SELECT d.id, d.name, d.source_file, d.created, v.version, v.rows FROM datasets d"
            " JOIN dataset_versions v ON v.dataset_id = d.id"
            " AND v.version = (SELECT MAX(version) FROM dataset_versions WHERE dataset_id = d.id)"
            " ORDER BY d.created, d.id").fetchall()
    return [DatasetSummary(r["id"], r["name"], r["source_file"], r["version"], r["rows"], r["created"]) for r in rows]
