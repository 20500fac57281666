"""Evaluation as a job kind of the job runner ("evaluate" in core.jobs.worker.JOB_KINDS).

    folder, title, settings = prepare(workspace, EvalRequest(run_id, …))   a new runs/<id>/evals/<eval_id>/
    jobs.start_job(KIND, folder, title, settings)                           the studio: a background process
    worker.run_other_job(workspace, JobFolder(folder), echo)                `lora-studio eval`: in the foreground

Both paths run `run` below in a process holding the device lock, with progress, ETA and Cancel through
core.progress; the eval folder is the job's folder (job.json, status.json, job.log beside the results).
An uploaded held-out file is copied into the eval folder first, so the evaluation can be re-read and
repeated after the upload is gone.
"""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from core.evaluation.workflow import HELD_OUT_FILE, EvalRequest, evaluate, summary_line
from core.inference import choices
from core.progress import Progress
from core.text import N_
from core.workspace import Workspace

KIND = "evaluate"


def new_eval_folder(workspace: Workspace, run_id: str) -> Path:
    """A fresh runs/<id>/evals/<eval_id>/ (eval ids are dated: eval-20250101-120000, -2, -3… when taken)."""
    evals = workspace.run_folder(run_id).evals
    evals.mkdir(parents=True, exist_ok=True)
    for _ in range(20):
        eval_id = workspace.unique_id(evals, f"eval-{datetime.now().strftime('%Y%m%d-%H%M%S')}")
        try:
            (evals / eval_id).mkdir()
            return evals / eval_id
        except FileExistsError:
            continue
    raise ConfigError(f"Could not find a free name for an evaluation of run '{run_id}'.", "Try again.")


def prepare(workspace: Workspace, request: EvalRequest) -> tuple[Path, str, dict[str, Any]]:
    """Check what can be checked at once (the runs have adapters, the file exists), make the eval folder and
    copy a held-out file into it. Returns (folder, title, settings) for the job."""
    for run_id in [request.run_id, *request.compare]:
        choices.run_choice(workspace, run_id)   # ConfigError in words when a run has no adapter
    if request.data_file and not Path(request.data_file).is_file():
        raise ConfigError(f"The held-out file {request.data_file} does not exist.", "Upload it again.")
    folder = new_eval_folder(workspace, request.run_id)
    settings = request.to_settings()
    if request.data_file:
        name = request.data_name or Path(request.data_file).name
        copied = folder / f"{HELD_OUT_FILE}{Path(name).suffix.lower()}"
        shutil.copyfile(request.data_file, copied)
        settings.update(data_file=str(copied), data_name=Path(name).name)
    runs = ", ".join(f"'{run_id}'" for run_id in [request.run_id, *request.compare])
    title = N_(f"evaluation of the base model and run {runs}" if request.include_base else f"evaluation of run {runs}")
    return folder, title, settings


def run(workspace: Workspace, folder: Path, settings: dict[str, Any], progress: Progress) -> str:
    """The job: evaluate as job.json says and return the one-line summary."""
    return summary_line(evaluate(workspace, folder, EvalRequest.from_settings(settings), progress))
