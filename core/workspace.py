"""The workspace on disk: the only module that knows where things live.

    <root>/studio.db                  SQLite index (see core.db)
    <root>/models/<name>/             converted default model, registered local models
    <root>/datasets/<id>/raw.<ext>    the upload exactly as received
    <root>/datasets/<id>/v<N>/        data.jsonl, rejects.jsonl, report.json
    <root>/runs/<id>/                 config.yaml, status.json, metrics.jsonl, train.log, job.out, summary.json,
                                      checkpoints/, adapter/, evals/<eval_id>/
    <root>/exports/<id>/              export.json (written last, once verified), README.md (the model card), and
                                      model/ | adapter/ + <id>-adapter.zip | <id>-<type>.gguf + Modelfile;
                                      the export job's job.json, status.json, job.log beside them
    <root>/presets/<id>.yaml          run configs saved under a name in the Configure tab
    <root>/ratings/<id>/              a human rating session: session.json, prompts.jsonl, responses.jsonl,
                                      and the files of the job that generated the responses
    <root>/logs/
    <root>/locks/                     device.lock (the one lock on the compute device), device.json

The folders are the truth and the database indexes them. Ids are generated from user-chosen names
by `safe_id`, so a name can never point outside the workspace.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import re
import shutil
import sqlite3
import tempfile
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from core import db
from core.errors import WorkspaceError

DEFAULT_ROOT = "workspace"
ENV_ROOT = "LORA_STUDIO_HOME"
ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"   # shipped with the code: demo data, model configs

_ID_CHARS = re.compile(r"[^a-z0-9._-]+")
_MAX_ID_LEN = 64


def resolve_root(explicit: str | os.PathLike[str] | None = None) -> Path:
    """--workspace wins, then $LORA_STUDIO_HOME, then ./workspace."""
    chosen = explicit or os.environ.get(ENV_ROOT) or DEFAULT_ROOT
    return Path(chosen).expanduser().resolve()


def safe_id(name: str) -> str:
    """A file-system-safe id from a user-chosen name: lower-case ASCII letters, digits, '.', '_', '-'.

    Separators, '..' and shell characters cannot survive, so the id is always one plain folder name.
    Names with no usable character (e.g. all Chinese) fall back to a hash-free placeholder that the
    caller makes unique with `unique_id`.
    """
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    cleaned = _ID_CHARS.sub("-", ascii_name.lower()).strip(".-_")
    cleaned = re.sub(r"-{2,}", "-", re.sub(r"\.{2,}", ".", cleaned))[:_MAX_ID_LEN].strip(".-_")
    return cleaned or "item"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def is_within(path: Path, roots: Sequence[Path]) -> bool:
    """Whether `path`, with links and `..` resolved, lies inside one of `roots`."""
    resolved = Path(path).expanduser().resolve()
    return any(resolved.is_relative_to(Path(root).expanduser().resolve()) for root in roots)


def atomic_write_text(path: Path, text: str) -> None:
    """Write through a temp file in the same folder and os.replace it, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def atomic_write_yaml(path: Path, data: Any) -> None:
    atomic_write_text(path, yaml.safe_dump(data, allow_unicode=True, sort_keys=False))


def replace_folder(staging: Path, target: Path) -> None:
    """Put the complete folder `staging` at `target`, replacing any folder there, so that a reader of
    `target` always finds the old folder or the new one, never neither; the old one is then deleted.
    Both paths must be on the same file system (keep `staging` next to `target`)."""
    try:
        os.rename(staging, target)  # atomic; succeeds when there is nothing (or an empty folder) at target
        return
    except OSError as error:
        if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
    if not _exchange(staging, target):
        # No atomic exchange here (not Linux, an old kernel or glibc, or a file system without it): move
        # the old folder aside and the new one in. Between the two renames `target` is briefly missing.
        aside = staging.with_name(f"{staging.name}.old")
        shutil.rmtree(aside, ignore_errors=True)
        os.rename(target, aside)
        os.rename(staging, target)
        staging = aside
    shutil.rmtree(staging)  # the old folder


_RENAME_EXCHANGE = 2   # from <linux/fs.h>: swap the two paths atomically
_AT_FDCWD = -100       # from <fcntl.h>: relative paths start at the working directory


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths in one step with Linux renameat2(RENAME_EXCHANGE); False where that is unavailable."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)  # glibc 2.28+
    if renameat2 is None:
        return False
    if renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL):  # kernel before 3.15, or a file system that cannot exchange
        return False
    raise OSError(code, os.strerror(code), str(first), None, str(second))


def read_json(path: Path, default: Any = None) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return default


@dataclass(frozen=True)
class RunFolder:
    """The files of one training run (runs/<id>/), named in one place for the trainer and its readers."""

    root: Path

    @property
    def run_id(self) -> str:
        return self.root.name

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def status(self) -> Path:
        return self.root / "status.json"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def log(self) -> Path:
        return self.root / "train.log"

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    def checkpoint(self, step: int) -> Path:
        return self.checkpoints / f"step-{step:07d}"

    @property
    def adapter(self) -> Path:
        """The finished adapter (peft format, with the tokenizer)."""
        return self.root / "adapter"

    @property
    def best_adapter(self) -> Path:
        """While training with keep-best: the adapter of the best evaluation so far."""
        return self.root / "best-adapter"

    @property
    def evals(self) -> Path:
        return self.root / "evals"

    @property
    def stop_request(self) -> Path:
        """Present while a stop has been asked for; the trainer checks it between steps."""
        return self.root / "STOP"

    @property
    def checkpoint_request(self) -> Path:
        """Present while a checkpoint has been asked for (the studio is shutting down); the trainer saves
        one after the current step, removes the file and carries on."""
        return self.root / "CHECKPOINT"

    @property
    def job_output(self) -> Path:
        """What the job process printed (stdout and stderr): the place to look when it crashed."""
        return self.root / "job.out"


@dataclass(frozen=True)
class ExportFolder:
    """The files of one export (exports/<id>/). The export job's own files (job.json, status.json, job.log,
    job.out) are core.system.job_status's; everything else here is the export's."""

    root: Path

    @property
    def export_id(self) -> str:
        return self.root.name

    @property
    def manifest(self) -> Path:
        """export.json: written last, only once the export is verified; its absence means not complete."""
        return self.root / "export.json"

    @property
    def card(self) -> Path:
        """The model card (README.md)."""
        return self.root / "README.md"

    @property
    def model(self) -> Path:
        """A model folder that loads with plain transformers (merged and quantised exports)."""
        return self.root / "model"

    @property
    def adapter(self) -> Path:
        return self.root / "adapter"

    @property
    def adapter_zip(self) -> Path:
        return self.root / f"{self.export_id}-adapter.zip"

    def gguf(self, outtype: str) -> Path:
        return self.root / f"{self.export_id}-{outtype}.gguf"

    @property
    def modelfile(self) -> Path:
        """Ollama's recipe for the GGUF file beside it."""
        return self.root / "Modelfile"

    @property
    def staging(self) -> Path:
        """The merged model a quantised or GGUF export is made from; removed when the job ends."""
        return self.root / ".staging"

    JOB_FILES = ("job.json", "status.json", "job.log", "job.out", "STOP")


@dataclass(frozen=True)
class RatingFolder:
    """The files of one rating session (ratings/<id>/): what it rates, written once when it is created,
    and the responses its generation job writes. It is also that job's folder (core.system.job_status)."""

    root: Path

    @property
    def session_id(self) -> str:
        return self.root.name

    @property
    def definition(self) -> Path:
        """session.json: name, mode, models, criteria, overlap, prompt source, seed."""
        return self.root / "session.json"

    @property
    def prompts(self) -> Path:
        """prompts.jsonl: the prompt set, one conversation (up to the user's turn) per line."""
        return self.root / "prompts.jsonl"

    @property
    def responses(self) -> Path:
        """responses.jsonl: one line per prompt and model, appended as each model finishes."""
        return self.root / "responses.jsonl"


@dataclass(frozen=True)
class Workspace:
    root: Path

    @classmethod
    def open(cls, explicit: str | os.PathLike[str] | None = None) -> Workspace:
        """Open (and create if needed) the workspace folder tree."""
        workspace = cls(resolve_root(explicit))
        try:
            for folder in (workspace.models_dir, workspace.datasets_dir, workspace.runs_dir,
                           workspace.exports_dir, workspace.logs_dir):
                folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise WorkspaceError(
                f"Cannot create the workspace at {workspace.root}: {error.strerror}.",
                "Choose a folder you can write to with --workspace DIR or LORA_STUDIO_HOME.",
            ) from error
        return workspace

    @property
    def db_path(self) -> Path:
        return self.root / "studio.db"

    def connect(self) -> sqlite3.Connection:
        """A new connection to the workspace index (WAL, migrated); close it when done."""
        return db.connect(self.db_path)

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def datasets_dir(self) -> Path:
        return self.root / "datasets"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def exports_dir(self) -> Path:
        return self.root / "exports"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def locks_dir(self) -> Path:
        """device.lock (core.system.device_lock) and device.json, who holds it."""
        return self.root / "locks"

    def model_dir(self, name: str) -> Path:
        return self.models_dir / self._checked(name)

    def dataset_dir(self, dataset_id: str) -> Path:
        return self.datasets_dir / self._checked(dataset_id)

    def dataset_version_dir(self, dataset_id: str, version: int) -> Path:
        return self.dataset_dir(dataset_id) / f"v{int(version)}"

    def run_dir(self, run_id: str) -> Path:
        return self.runs_dir / self._checked(run_id)

    def run_folder(self, run_id: str) -> RunFolder:
        return RunFolder(self.run_dir(run_id))

    def export_dir(self, export_id: str) -> Path:
        return self.exports_dir / self._checked(export_id)

    def export_folder(self, export_id: str) -> ExportFolder:
        return ExportFolder(self.export_dir(export_id))

    @property
    def presets_dir(self) -> Path:
        return self.root / "presets"

    def preset_path(self, preset_id: str) -> Path:
        return self.presets_dir / f"{self._checked(preset_id)}.yaml"

    @property
    def ratings_dir(self) -> Path:
        return self.root / "ratings"

    def rating_folder(self, session_id: str) -> RatingFolder:
        return RatingFolder(self.ratings_dir / self._checked(session_id))

    def relative(self, path: Path) -> str:
        """`path` inside the workspace as a relative POSIX path ("runs/faq-r16"): how jobs are named."""
        try:
            return Path(path).resolve().relative_to(self.root).as_posix()
        except ValueError:
            raise WorkspaceError(f"{path} is not inside the workspace {self.root}.") from None

    def unique_id(self, parent: Path, name: str) -> str:
        """safe_id(name), suffixed -2, -3… until no folder of that name exists under parent. The base is
        shortened to leave room for the suffix, so the result is still a valid id."""
        base = safe_id(name)
        candidate, n = base, 1
        while (parent / candidate).exists():
            n += 1
            suffix = f"-{n}"
            candidate = base[:_MAX_ID_LEN - len(suffix)].rstrip(".-_") + suffix
        return candidate

    @staticmethod
    def _checked(item_id: str) -> str:
        if not item_id or safe_id(item_id) != item_id:
            raise WorkspaceError(
                f"'{item_id}' is not a valid id.",
                "Ids use only a-z, 0-9, '.', '_' and '-'; pick the item from the list instead.",
            )
        return item_id
