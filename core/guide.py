"""The first-run guide: where a workspace stands on the path Data → Configure → Train → Evaluate → Rate →
Chat → Export, read from what is on disk (never from a page), and one sentence per step on what to do.

    steps = guide.journey(workspace)   -> [Step] in path order, each done or not, with what to do in it
    guide.current(steps)               -> the first step not done; None once every step is done

A step is done when the workspace shows it:
    data       a dataset of your own, or the demo cleaned, split or mixed (a version after the upload)
    configure  a run started (whatever became of it)
    train      a run finished
    evaluate   an evaluation finished
    rate       a rating session exists
    chat       an export exists: chatting leaves nothing behind, so it counts once you have moved on
    export     an export completed (checked)

The titles and sentences are English, marked with N_ (core.text); the studio shows them translated (its
catalog holds each sentence as a template, with the values found again in the text).
"""

from __future__ import annotations

from dataclasses import dataclass

from core import config as run_config
from core.data import store
from core.errors import StudioError
from core.evaluation import results
from core.export import records as export_records
from core.models import modeling
from core.planning import estimate, presets
from core.planning.preflight import format_duration
from core.rating import sessions
from core.runs import records
from core.runs.records import RunStatus
from core.text import N_
from core.workspace import Workspace

QUICK_PRESET = "quick-demo-cpu"
STEP_TITLES = {"data": N_("Data"), "configure": N_("Configure"), "train": N_("Train"), "evaluate": N_("Evaluate"),
               "rate": N_("Rate"), "chat": N_("Chat"), "export": N_("Export")}


@dataclass(frozen=True)
class Step:
    key: str        # data, configure, train, evaluate, rate, chat, export: also the studio's tab id
    title: str
    done: bool
    todo: str       # one sentence: what to do in this step (Markdown: **buttons**, *names*)
    evidence: str   # what shows the step done, in words; "" while it is not


def _step(key: str, done: bool, todo: str, evidence: str = "") -> Step:
    return Step(key, STEP_TITLES[key], done, todo, evidence if done else "")


@dataclass(frozen=True)
class _Facts:
    """What the guide reads from the workspace, once per call."""

    own_dataset: store.DatasetSummary | None    # the newest dataset a user made (not the demo, not hard examples)
    demo_versions: int
    data_label: str                             # the version to train on, as the Configure tab lists it
    data_path: str                              # its data file, relative to the workspace
    runs: list[RunStatus]                       # newest first
    evaluated: results.EvalSummary | None       # the newest finished evaluation of the newest evaluated run
    rating_sessions: int
    exports: int                                # completed exports

    @property
    def finished(self) -> RunStatus | None:
        return next((run for run in self.runs if run.state == "finished"), None)


def _read(workspace: Workspace) -> _Facts:
    datasets = store.list_datasets(workspace)
    own = [d for d in datasets if d.id not in (store.DEMO_DATASET_ID, store.HARD_EXAMPLES_ID)]
    demo = next((d for d in datasets if d.id == store.DEMO_DATASET_ID), None)
    chosen = own[-1] if own else demo
    label = f"{chosen.name} · v{chosen.latest_version}" if chosen else N_("your dataset")
    path = f"datasets/{chosen.id}/v{chosen.latest_version}/{store.DATA_FILE}" if chosen else ""
    runs = records.list_runs(workspace)
    evaluated = next((summary for run in runs for summary in results.list_evals(workspace, run.run_id)
                      if summary.complete), None)
    return _Facts(own[-1] if own else None, demo.latest_version if demo else 0, label, path, runs, evaluated,
                  len(sessions.list_sessions(workspace)),
                  sum(1 for export in export_records.list_exports(workspace) if export.complete))


def quick_demo_duration(workspace: Workspace, data_path: str) -> str:
    """How long the quick CPU preset trains on `data_path` by the pre-flight estimate ("about 2 min"), or ""
    when it cannot be told yet (the default model is still being prepared, the data cannot be read)."""
    if not data_path or not modeling.default_model_ready(workspace):
        return ""
    try:
        config = run_config.build(None, QUICK_PRESET, [f"data.train_path={data_path}"])
        timing = estimate.estimate(config, workspace).time
    except (StudioError, OSError):
        return ""
    return format_duration(timing.seconds) if timing else ""


def _data_step(facts: _Facts) -> Step:
    if facts.own_dataset:
        evidence = N_(f"your dataset *{facts.own_dataset.name}* is in")
    elif facts.demo_versions > 1:
        evidence = N_(f"the demo dataset has {facts.demo_versions} versions")
    else:
        evidence = ""
    return _step("data", bool(evidence), N_(
        "In **Data**, pick the demo dataset (a clinic's patient FAQ), press **Check this version**, then **Save cleaned "
        "version** — or upload a file of your own dialogues (JSONL, JSON or CSV)."), evidence)


def _configure_step(facts: _Facts, duration: str) -> Step:
    preset = presets.BUILT_IN_LABELS[QUICK_PRESET]
    todo = N_(f"In **Configure**, choose the training data *{facts.data_label}* and the preset **{preset}**, then "
              f"press **Start** in **Train**: {duration} of training on this machine." if duration else
              f"In **Configure**, choose the training data *{facts.data_label}* and the preset **{preset}**, then "
              "press **Start** in **Train**.")
    started = facts.runs[-1] if facts.runs else None   # the first run
    return _step("configure", started is not None, todo, N_(f"run *{started.name}* was started") if started else "")


def _train_step(facts: _Facts, duration: str) -> Step:
    finished, latest = facts.finished, facts.runs[0] if facts.runs else None
    if finished:
        return _step("train", True, N_("Train again whenever you have better data or settings."),
                     N_(f"run *{finished.name}* finished"))
    if latest is None:
        todo = N_(f"Press **Start** in **Train** and watch the loss fall ({duration} with the quick preset)." if duration
                  else "Press **Start** in **Train** and watch the loss fall.")
    elif latest.active:
        todo = N_(f"Run *{latest.name}* is training (step {latest.step} of {latest.total_steps}): follow its loss in "
                  "**Train**; the guide moves on when it finishes." if latest.total_steps else
                  f"Run *{latest.name}* is training: follow its loss in **Train**; the guide moves on when it finishes.")
    elif latest.state == "failed":
        reason = ((latest.error or {}).get("message") or latest.message or "").rstrip(".") or N_("no reason was recorded")
        todo = N_(f"Run *{latest.name}* failed: {reason}. **Train** says what to try; change the settings in "
                  "**Configure** and press **Start** again.")
    else:
        todo = N_(f"Run *{latest.name}* is {latest.state} at step {latest.step} of {latest.total_steps}: press "
                  "**Resume** in **Train** to finish it, or **Start** a new run.")
    return _step("train", False, todo)


def _later_steps(facts: _Facts) -> list[Step]:
    finished = facts.finished
    run = N_(f"run *{finished.name}*" if finished else "your run")
    evaluated = facts.evaluated
    evaluate = _step("evaluate", evaluated is not None, N_(
        f"In **Evaluate**, pick {run} and press **Evaluate**: it and the base model answer questions it never "
        "trained on, and both are scored."),
        N_(f"an evaluation finished ({evaluated.headline or evaluated.held_out})") if evaluated else "")
    rate = _step("rate", facts.rating_sessions > 0, N_(
        f"In **Rate → Sessions**, create a session in which {run} and the base model answer, then rate the answers "
        "blind under **Rate responses** (or let your annotators do it)."),
        N_(f"{facts.rating_sessions} rating session(s)") if facts.rating_sessions else "")
    chat = _step("chat", facts.exports > 0, N_(
        f"In **Chat**, pick {run} and ask it something from your domain; tick **Side by side** to hear the base "
        "model's answer next to it."), N_("you moved on to Export") if facts.exports else "")
    export = _step("export", facts.exports > 0, N_(
        f"In **Export**, pick {run} and a format — *Adapter only* is a small zip, *Merged model* a whole model "
        "other tools load — and press **Export**."), N_(f"{facts.exports} export(s)") if facts.exports else "")
    return [evaluate, rate, chat, export]


def journey(workspace: Workspace) -> list[Step]:
    """The seven steps in path order, as this workspace stands now. The quick run's time is estimated only
    while Configure is the step to do (the estimate reads the data and the model: not worth it otherwise)."""
    facts = _read(workspace)
    steps = _steps(facts, "")
    now = current(steps)
    if now is not None and now.key == "configure":
        steps = _steps(facts, quick_demo_duration(workspace, facts.data_path))
    return steps


def _steps(facts: _Facts, duration: str) -> list[Step]:
    return [_data_step(facts), _configure_step(facts, duration), _train_step(facts, duration), *_later_steps(facts)]


def current(steps: list[Step]) -> Step | None:
    """The step to do now: the first one not done; None once all are done."""
    return next((step for step in steps if not step.done), None)
