"""A finished run as a stakeholder sees it (the studio's Demo tab): its headline numbers in plain words and the
two models a demo chat puts side by side, the run's base and the tuned run.

    finished_runs(workspace)              -> [RunStatus], newest first: runs that finished with an adapter
    showcase(workspace, run_id)           -> Showcase: training figures, the loss records, the latest finished
                                             evaluation's metrics against the base (95% intervals and the
                                             change), the human ratings, and the demo chat's two models
    demo_chat(workspace, run_id)          -> DemoChat: the base and the tuned run as chat choice keys, with the
                                             run's system prompt and reply settings, which both answer with

Everything is read from what the run, its evaluations (core.evaluation.results) and the rating sessions
(core.rating.results) already wrote; nothing is computed again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from core.config import GenerationSection
from core.errors import ConfigError
from core.evaluation import results
from core.evaluation.workflow import LOWER_IS_BETTER
from core.inference import choices
from core.rating import results as rating_results
from core.runs import metrics as run_metrics
from core.runs import records
from core.runs.records import RunStatus
from core.text import N_
from core.workspace import Workspace, read_json

# The metrics a demo shows, each with one line saying what it measures (scores are 0-100). English, marked for
# the studio's translation (core.text), like the verdicts and the figures' words below.
METRICS = {
    "chrf": ("chrF", N_("how closely the answers match the ideal answers, character by character (0-100, higher is "
                        "better)")),
    "rougeL": ("ROUGE-L", N_("the longest run of words shared with the ideal answers (0-100, higher is better)")),
    "bleu": ("BLEU", N_("how many word sequences the answers share with the ideal answers (0-100, higher is better)")),
    "perplexity": (N_("Perplexity"), N_("how surprised the model is by the ideal answers (lower is better)")),
}


@dataclass(frozen=True)
class Estimate:
    """A figure with its 95% confidence interval: the range the true value lies in, 95 times out of 100."""

    value: float
    low: float | None
    high: float | None

    @classmethod
    def of(cls, entry: dict[str, Any] | None, key: str = "value") -> Estimate | None:
        if not entry or entry.get(key) is None:
            return None
        return cls(float(entry[key]), entry.get("ci_low"), entry.get("ci_high"))

    def words(self, signed: bool = False) -> str:
        """'61.2 (95% CI 55.0 to 67.1)', or '+48.8 (95% CI +40.1 to +57.0)' signed."""
        form = "+.1f" if signed else ".1f"
        if self.low is None or self.high is None:
            return f"{self.value:{form}}"
        value, low, high = (f"{number:{form}}" for number in (self.value, self.low, self.high))
        return N_(f"{value} (95% CI {low} to {high})")


@dataclass(frozen=True)
class MetricResult:
    """One metric of the run, beside the base's on the same prompts."""

    name: str                    # "chrF"
    meaning: str                 # one line: what it measures
    tuned: Estimate
    base: Estimate | None        # None when the base did not answer in this evaluation
    change: Estimate | None      # tuned minus base, with a paired-bootstrap interval
    lower_is_better: bool = False
    better: int = 0              # prompts whose answer got better, worse, stayed the same
    worse: int = 0
    same: int = 0

    @property
    def verdict(self) -> str:
        """'better', 'worse', 'no clear change' (the change's interval includes 0, or there is no interval), or
        'not compared' when the base did not answer."""
        if self.change is None:
            return N_("not compared")
        if self.change.low is None or self.change.high is None or self.change.low <= 0 <= self.change.high:
            return N_("no clear change")
        improved = (self.change.value < 0) if self.lower_is_better else (self.change.value > 0)
        return N_("better" if improved else "worse")


@dataclass(frozen=True)
class EvaluationHeadline:
    eval_id: str
    held_out: str                # in words: "the run's validation rows", a file's name
    samples: int
    baseline: str                # the model the run is compared with, in words ("the base model default")
    metrics: list[MetricResult]


@dataclass(frozen=True)
class TrainingFigures:
    wall_s: float | None         # from start to end of training
    steps: int
    final_loss: float | None     # training loss at the last step
    best_eval_loss: float | None  # lowest loss on the validation rows


@dataclass(frozen=True)
class DemoChat:
    """The two models a demo chat puts side by side, answering with the run's system prompt and reply settings,
    so the one difference between them is the adapter."""

    base_key: str                # "base:<the run's base model>"
    run_key: str                 # "run:<run id>"
    system_prompt: str
    generation: GenerationSection

    @property
    def keys(self) -> tuple[str, str]:
        return self.base_key, self.run_key


@dataclass(frozen=True)
class Showcase:
    run_id: str
    name: str
    model: str                   # the base model's name (a local folder's own name, not its path)
    dataset: str
    finished: str                # when it finished (ISO time)
    training: TrainingFigures
    loss_records: list[dict[str, Any]]   # core.runs.metrics records: the loss curve
    evaluation: EvaluationHeadline | None
    ratings: dict[str, str] | None        # human ratings in a few lines (core.rating.results.card_summary)
    chat: DemoChat


def model_name(name: str) -> str:
    """A model's name for people: a local folder by its own name (never the server's path), else as given."""
    return PurePath(name).name if PurePath(name).is_absolute() else name


def _baseline_label(key: str, label: str) -> str:
    kind, _, name = key.partition(":")
    return N_(f"the base model {model_name(name)}") if kind == "base" else label


def finished_runs(workspace: Workspace) -> list[RunStatus]:
    """Runs that finished with an adapter, newest first: the ones a demo can show."""
    return [status for status in records.list_runs(workspace) if status.state == "finished"
            and (workspace.run_folder(status.run_id).adapter / "adapter_config.json").is_file()]


def latest_evaluation(workspace: Workspace, run_id: str) -> EvaluationHeadline | None:
    """The run's latest finished evaluation, each metric against the baseline; None when it has none."""
    eval_id = results.latest_complete(workspace, run_id)
    if eval_id is None:
        return None
    found = results.load_metrics(workspace, run_id, eval_id)
    key = f"run:{run_id}"
    tuned = found["models"].get(key)
    if tuned is None:
        return None
    comparison = next((entry for entry in found["comparisons"] if entry["model"] == key), None)
    baseline = found["models"].get(comparison["baseline"]) if comparison else None
    shown = []
    for metric, (name, meaning) in METRICS.items():
        estimate = Estimate.of(tuned.get(metric))
        if estimate is None:
            continue
        delta = comparison["deltas"].get(metric, {}) if comparison else {}
        shown.append(MetricResult(name, meaning, estimate, Estimate.of(baseline.get(metric)) if baseline else None,
                                  Estimate.of(delta, "delta"), metric in LOWER_IS_BETTER, delta.get("better", 0),
                                  delta.get("worse", 0), delta.get("same", 0)))
    return EvaluationHeadline(eval_id, found["held_out"]["name"], tuned["counts"]["samples"],
                              _baseline_label(comparison["baseline"], baseline["label"]) if comparison and baseline
                              else "", shown)


def demo_chat(workspace: Workspace, run_id: str) -> DemoChat:
    """The base and the tuned run of `run_id`, to answer side by side (refused unless it finished with an adapter)."""
    if not isinstance(run_id, str) or not run_id:   # a script may send anything
        raise ConfigError("No run is chosen.", "Pick a finished run from the list.")
    status = records.read_status(workspace.run_folder(run_id))
    if status.state != "finished":
        raise ConfigError(f"Run '{status.name}' has not finished ({status.state}).", "Pick a finished run.")
    tuned = choices.run_choice(workspace, run_id)
    return DemoChat(choices.base_choice(tuned.base).key, tuned.key, tuned.system_prompt, tuned.generation)


def showcase(workspace: Workspace, run_id: str) -> Showcase:
    """Run `run_id` as the Demo tab shows it (refused unless it finished with an adapter)."""
    chat = demo_chat(workspace, run_id)
    folder = workspace.run_folder(run_id)
    status = records.read_status(folder)
    config = records.load_config(folder)
    summary = read_json(folder.summary, {}) or {}
    training = TrainingFigures(summary.get("wall_s"), summary.get("steps", status.step), summary.get("final_loss"),
                               summary.get("best_eval_loss", status.eval_loss))
    return Showcase(
        run_id=run_id, name=status.name, model=model_name(config.model.name), dataset=records.dataset_label(config),
        finished=status.finished or status.updated, training=training,
        loss_records=run_metrics.read_all(folder.metrics), evaluation=latest_evaluation(workspace, run_id),
        ratings=rating_results.card_summary(workspace, run_id), chat=chat)
