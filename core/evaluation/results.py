"""Evaluations read back, and the loop from bad answers into the next run.

    list_evals(workspace, run_id)                          -> [EvalSummary], newest first
    samples(workspace, run_id, eval_id, sort_by="chrf")    -> [SampleRow], worst first
    save_ideal_answer(workspace, run_id, eval_id, 3, "…")  the answer item 3 should have had (edits.json)
    send_to_hard_examples(workspace, run_id, eval_id, [3, 7])  -> a new hard-examples version, with lineage
    next_run(workspace, run_id, (8, 2), two_stage=True)    -> NextRun: a mixed dataset version and the config
                                                              of a run that trains on it

An evaluation is complete when its metrics.json exists (core.evaluation.workflow writes it last). Edited
answers live beside the results in edits.json; the scores keep comparing with the original reference.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.config import RunConfig, validate
from core.data import store
from core.data.store import VersionSummary
from core.errors import ConfigError, DataError, WorkspaceError
from core.evaluation.workflow import METRICS_FILE, PREDICTIONS_FILE
from core.runs import records
from core.system import job_status
from core.system.job_status import JobFolder
from core.text import N_
from core.workspace import Workspace, atomic_write_json, read_json, safe_id

EDITS_FILE, SENT_FILE = "edits.json", "sent.json"
SORT_KEYS = {"chrf": "chrF", "bleu": N_("BLEU (sentence)"), "rougeL": "ROUGE-L", "loss": N_("Loss of the reference")}
_VERSION_PATH = re.compile(r"^datasets/(?P<dataset>[^/]+)/v(?P<version>\d+)/data\.jsonl$")


@dataclass(frozen=True)
class EvalSummary:
    eval_id: str
    run_id: str
    state: str          # finished, or the job's state while it runs or when it did not finish
    created: str
    held_out: str       # in words
    models: list[str]   # choice keys
    headline: str       # e.g. "chrF 61.2 (base 12.4, +48.8, 95% CI +40.1 to +57.0)"

    @property
    def complete(self) -> bool:
        return self.state == "finished"


def eval_folder(workspace: Workspace, run_id: str, eval_id: str) -> Path:
    if not eval_id or safe_id(eval_id) != eval_id:
        raise WorkspaceError(f"'{eval_id}' is not a valid evaluation id.", "Pick an evaluation from the list.")
    return workspace.run_folder(run_id).evals / eval_id


def load_metrics(workspace: Workspace, run_id: str, eval_id: str) -> dict[str, Any]:
    metrics = read_json(eval_folder(workspace, run_id, eval_id) / METRICS_FILE)
    if not isinstance(metrics, dict) or not metrics.get("complete"):
        raise WorkspaceError(f"Evaluation '{eval_id}' of run '{run_id}' has no results.",
                             "It was cancelled, failed or is still running; pick a finished one.")
    return metrics


def load_predictions(workspace: Workspace, run_id: str, eval_id: str) -> list[dict[str, Any]]:
    load_metrics(workspace, run_id, eval_id)   # only complete evaluations have trustworthy predictions
    return store._read_jsonl(eval_folder(workspace, run_id, eval_id) / PREDICTIONS_FILE)


def headline(metrics: dict[str, Any], run_id: str) -> str:
    """The evaluated run's chrF, and its change against the baseline with the 95% interval."""
    key = f"run:{run_id}"
    model = metrics["models"].get(key)
    if model is None or model["chrf"]["value"] is None:
        return ""
    value = model["chrf"]["value"]
    comparison = next((entry for entry in metrics["comparisons"] if entry["model"] == key), None)
    if comparison is None:
        return f"chrF {value:.1f}"
    delta, base = comparison["deltas"]["chrf"], metrics["models"][comparison["baseline"]]["chrf"]["value"]
    change, low, high = delta["delta"], delta["ci_low"], delta["ci_high"]
    return N_(f"chrF {value:.1f} (baseline {base:.1f}, {change:+.1f}, 95% CI {low:+.1f} to {high:+.1f})")


def list_evals(workspace: Workspace, run_id: str) -> list[EvalSummary]:
    """Every evaluation of the run, newest first: finished ones with their headline, others with their state."""
    evals = workspace.run_folder(run_id).evals
    found = []
    for folder in evals.iterdir() if evals.is_dir() else []:
        metrics = read_json(folder / METRICS_FILE)
        if isinstance(metrics, dict) and metrics.get("complete"):
            found.append(EvalSummary(folder.name, run_id, "finished", metrics.get("created", ""),
                                     metrics["held_out"]["name"], list(metrics["models"]), headline(metrics, run_id)))
            continue
        job = JobFolder(folder)
        if job.status.is_file():
            status = job_status.read(job)
            found.append(EvalSummary(folder.name, run_id, status.state, status.created, status.message, [], ""))
    return sorted(found, key=lambda summary: (summary.created, summary.eval_id), reverse=True)


def latest_complete(workspace: Workspace, run_id: str) -> str | None:
    return next((summary.eval_id for summary in list_evals(workspace, run_id) if summary.complete), None)


@dataclass(frozen=True)
class SampleRow:
    """One held-out item as the error analysis shows it: the model's answer beside the baseline's."""

    index: int
    language: str
    source: str
    prompt: str
    context: list[dict[str, str]]
    reference: str            # the ideal answer: the edited one when there is one
    original_reference: str
    edited: bool
    answer: str
    score: float | None       # of `answer` under the sort key
    baseline_answer: str | None
    baseline_score: float | None
    change: str               # better, worse, same (against the baseline, under the sort key), or ""
    scores: dict[str, Any]
    sent: int | None          # the hard-examples version it was sent to


def _edits(folder: Path) -> dict[str, str]:
    return read_json(folder / EDITS_FILE, {}) or {}


def samples(workspace: Workspace, run_id: str, eval_id: str, model: str | None = None, sort_by: str = "chrf",
            worst_first: bool = True) -> list[SampleRow]:
    """Each item with `model`'s answer (default: the evaluated run) and the baseline's, sorted by `sort_by`
    (a score, or "loss": the reference's loss under the model), worst first. Items without a score last."""
    if sort_by not in SORT_KEYS:
        raise ConfigError(f"Cannot sort by '{sort_by}'.", f"Choose one of: {', '.join(SORT_KEYS)}.")
    metrics = load_metrics(workspace, run_id, eval_id)
    folder = eval_folder(workspace, run_id, eval_id)
    model = model or f"run:{run_id}"
    if model not in metrics["models"]:
        raise ConfigError(f"'{model}' did not answer in evaluation '{eval_id}'.", "Pick one of the models it compared.")
    baseline = metrics["baseline"] if metrics["baseline"] != model else None
    lines = load_predictions(workspace, run_id, eval_id)
    theirs = {line["index"]: line for line in lines if line["model"] == baseline}
    edits, sent = _edits(folder), read_json(folder / SENT_FILE, {}) or {}
    rows = []
    for line in (line for line in lines if line["model"] == model):
        other = theirs.get(line["index"])
        ideal = edits.get(str(line["index"]))
        rows.append(SampleRow(
            index=line["index"], language=line["language"], source=line["source"], prompt=line["prompt"],
            context=line["context"], reference=ideal if ideal is not None else line["reference"],
            original_reference=line["reference"], edited=ideal is not None, answer=line["prediction"],
            score=line["scores"].get(sort_by), baseline_answer=other["prediction"] if other else None,
            baseline_score=other["scores"].get(sort_by) if other else None,
            change=(line.get("change") or {}).get(sort_by, "") if other else "", scores=line["scores"],
            sent=sent.get(str(line["index"]))))
    lower_is_worse = sort_by != "loss"

    def badness(row: SampleRow) -> float:
        if row.score is None or (isinstance(row.score, float) and math.isnan(row.score)):
            return -math.inf
        return -row.score if lower_is_worse else row.score
    return sorted(rows, key=badness, reverse=worst_first)


def save_ideal_answer(workspace: Workspace, run_id: str, eval_id: str, index: int, answer: str) -> None:
    """Record the answer item `index` should have had (an empty text restores the reference)."""
    folder = eval_folder(workspace, run_id, eval_id)
    known = {line["index"] for line in load_predictions(workspace, run_id, eval_id)}
    if index not in known:
        raise DataError(f"Evaluation '{eval_id}' has no item {index}.", "Pick an item from the table.")
    edits = _edits(folder)
    if answer.strip():
        edits[str(index)] = answer.strip()
    else:
        edits.pop(str(index), None)
    atomic_write_json(folder / EDITS_FILE, edits)


def send_to_hard_examples(workspace: Workspace, run_id: str, eval_id: str, indices: list[int]) -> VersionSummary:
    """Add the chosen items, each with its ideal answer, to the hard-examples dataset as a new version whose
    lineage names the run and the evaluation."""
    wanted = sorted(set(indices))
    if not wanted:
        raise DataError("No items are selected.", "Select the items to send first.")
    by_index = {row.index: row for row in samples(workspace, run_id, eval_id)}
    missing = [index for index in wanted if index not in by_index]
    if missing:
        raise DataError(f"Evaluation '{eval_id}' has no item {', '.join(map(str, missing))}.", "Pick items from the table.")
    conversations = [[*by_index[i].context, {"role": "assistant", "content": by_index[i].reference}] for i in wanted]
    version = store.add_hard_examples(workspace, conversations, {"run": run_id, "eval": eval_id})
    folder = eval_folder(workspace, run_id, eval_id)
    atomic_write_json(folder / SENT_FILE, {**(read_json(folder / SENT_FILE, {}) or {}),
                                           **{str(i): version.version for i in wanted}})
    return version


@dataclass(frozen=True)
class NextRun:
    config: RunConfig
    mixed: VersionSummary | None   # the mixed dataset version (None when the run's data is not a dataset version)
    hard_version: int
    description: str


def dataset_version_of(path: str, workspace: Workspace) -> tuple[str, int] | None:
    """(dataset id, version) when `path` is a dataset version's data.jsonl in this workspace."""
    given = Path(path)
    if given.is_absolute():
        try:
            path = given.resolve().relative_to(workspace.root.resolve()).as_posix()
        except ValueError:
            return None
    found = _VERSION_PATH.match(Path(path).as_posix())
    return (found["dataset"], int(found["version"])) if found else None


def next_run(workspace: Workspace, run_id: str, ratio: tuple[int, int] = (8, 2), two_stage: bool = False,
             name: str = "") -> NextRun:
    """The run that closes the loop: the evaluated run's config training on its data mixed with the latest
    hard examples at `ratio` (base:hard), from scratch or, two-stage, from the run's adapter
    (lora.init_from). A run whose data is a dataset version gets a new mixed version of that dataset (with
    lineage); a run on other files gets the hard examples as one more file of its data.mix."""
    config = records.load_config(workspace.run_folder(run_id))
    hard = [summary.version for summary in store.versions(workspace, store.HARD_EXAMPLES_ID)]
    if not hard:
        raise DataError("There are no hard examples yet.", "Send the worst answers to hard examples first.")
    hard_version = hard[-1]
    hard_path = f"datasets/{store.HARD_EXAMPLES_ID}/v{hard_version}/data.jsonl"
    source = None if config.data.mix else dataset_version_of(config.data.train_path, workspace)
    mixed = None
    if source is not None:
        mixed = store.mix_versions(workspace, source[0], source[1], store.HARD_EXAMPLES_ID, hard_version, ratio,
                                   seed=config.train.seed)
        data = {"train_path": f"datasets/{source[0]}/v{mixed.version}/data.jsonl", "mix": {}}
        where = f"{source[0]} v{mixed.version} ({mixed.note})"
    else:
        shares = dict(config.data.mix) or {config.data.train_path: float(ratio[0])}
        data = {"mix": {**shares, hard_path: sum(shares.values()) * ratio[1] / ratio[0]}}
        where = N_(f"its data plus {store.HARD_EXAMPLES_ID} v{hard_version} at {ratio[0]}:{ratio[1]}")
    run_name = name.strip() or f"{records.read_status(workspace.run_folder(run_id)).name} + hard examples"
    values = config.model_dump(mode="json")
    updated = validate({**values, "name": run_name, "data": {**values["data"], **data},
                        "lora": {**values["lora"], "init_from": run_id if two_stage else ""}})
    how = N_(f"continuing from run '{run_id}''s adapter" if two_stage else "from scratch")
    return NextRun(updated, mixed, hard_version, N_(f"Trains on {where}, {how}."))


def card_summary(workspace: Workspace, run_id: str) -> dict[str, str] | None:
    """The run's latest finished evaluation in a few lines (for a model card): each metric of the run with its
    95% interval, and its change against the baseline; None when it has none."""
    eval_id = latest_complete(workspace, run_id)
    if eval_id is None:
        return None
    metrics = load_metrics(workspace, run_id, eval_id)
    model = metrics["models"].get(f"run:{run_id}")
    if model is None:
        return None
    summary = {"Evaluation": f"{eval_id}, on {metrics['held_out']['name']}"}
    for name in ("bleu", "chrf", "rougeL", "perplexity"):
        entry = model.get(name) or {}
        if entry.get("value") is not None:
            summary[name] = f"{entry['value']:.2f} (95% CI {entry['ci_low']:.2f} to {entry['ci_high']:.2f})"
    if line := headline(metrics, run_id):
        summary["Against the baseline"] = line
    return summary
