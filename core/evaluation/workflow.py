"""One evaluation from start to end: the base model and one or more runs' adapters answer the same held-out
prompts, every answer is scored against its reference, and the results are written to the eval folder.

    evaluate(workspace, folder, request, progress) -> metrics (also written to folder/metrics.json)

    runs/<id>/evals/<eval_id>/predictions.jsonl   one line per prompt and model: index, source, language,
                                                  prompt, context, reference, model, model_label, prediction,
                                                  new_tokens, scores {bleu, chrf, rouge1, rouge2, rougeL,
                                                  exact_match, loss, perplexity}, and for a model compared
                                                  with the base: change {metric: better|worse|same}
    runs/<id>/evals/<eval_id>/metrics.json        per model: bleu, chrf, rouge1, rouge2, rougeL, exact_match,
                                                  perplexity (each value, ci_low, ci_high), counts, lengths,
                                                  per language, the generation settings used; comparisons
                                                  with deltas, paired-bootstrap intervals and sign counts

Models that share a base answer from one loaded model (core.inference.Answerer switches adapters), batched
with left padding and the KV cache. Each run answers with its own reply settings (its config's
generation.*); the base answers with the evaluated run's, prompted with the same chat template and system
prompt, so the comparison changes one thing: the adapter. Both files are written only once everything is
scored, predictions first and metrics.json last, each through a temp file: an evaluation that is cancelled
or fails leaves no metrics.json, so nothing half-done is ever shown as a result.
"""

from __future__ import annotations

import gc
import json
import math
import time
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from core.evaluation import heldout, scoring, stats
from core.evaluation.heldout import HeldOutSet, Item
from core.evaluation.scoring import Columns, SampleScores
from core.inference import choices
from core.inference.choices import ModelChoice
from core.progress import QUIET, Progress
from core.runs import records
from core.text import N_
from core.workspace import Workspace, atomic_write_json, atomic_write_text, now_iso

PREDICTIONS_FILE, METRICS_FILE, HELD_OUT_FILE = "predictions.jsonl", "metrics.json", "heldout"
ALL_METRICS = (*scoring.METRICS, "perplexity")
LOWER_IS_BETTER = ("perplexity",)


@dataclass(frozen=True)
class EvalRequest:
    run_id: str                                        # the evaluated run; results go into its evals/
    compare: list[str] = field(default_factory=list)   # other runs answering the same prompts
    include_base: bool = True                          # the base model answers too
    data_file: str | None = None                       # a held-out file (default: the run's validation rows)
    data_name: str | None = None                       # the file's name as the user knew it
    limit: int = 0                                     # evaluate only the first N items (0: all)
    batch_size: int = 8

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> EvalRequest:
        known = cls.__dataclass_fields__
        return cls(**{key: value for key, value in settings.items() if key in known})

    def to_settings(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass
class ModelAnswers:
    choice: ModelChoice
    texts: list[str]
    new_tokens: list[int]
    seconds: float
    nll: list[tuple[float, int]]
    samples: list[SampleScores] = field(default_factory=list)

    @cached_property
    def columns(self) -> Columns:
        """The scored samples as arrays (read once they are all scored)."""
        return Columns.of(self.samples, [n for n, _ in self.nll], [t for _, t in self.nll])


def held_out_set(workspace: Workspace, request: EvalRequest) -> HeldOutSet:
    chosen = (heldout.from_file(Path(request.data_file), request.data_name) if request.data_file
              else heldout.run_validation(workspace, request.run_id))
    if request.limit and request.limit < len(chosen.items):
        chosen = replace(chosen, items=chosen.items[:request.limit],
                         name=N_(f"{chosen.name}, only the first {request.limit}"),
                         origin={**chosen.origin, "limit": request.limit})
    return chosen


def model_choices(workspace: Workspace, request: EvalRequest) -> list[ModelChoice]:
    """The base (prompted and set up as the run) first when asked for, then the run, then the others."""
    evaluated = choices.run_choice(workspace, request.run_id)
    runs = [evaluated, *(choices.run_choice(workspace, run_id) for run_id in request.compare if run_id != request.run_id)]
    if not request.include_base:
        return runs
    base = replace(choices.base_choice(evaluated.base), template=evaluated.template,
                   system_prompt=evaluated.system_prompt, generation=evaluated.generation)
    return [base, *runs]


def _answer_all(workspace: Workspace, items: list[Item], models: list[ModelChoice], batch_size: int,
                max_length: int, seed: int, progress: Progress) -> list[ModelAnswers]:
    """Every model's answers and reference likelihoods, one loaded base at a time."""
    import torch

    from core.evaluation.likelihood import reference_nll
    from core.inference.answering import Answerer

    units = 2 * len(items)
    total = units * len(models)
    answered: dict[str, ModelAnswers] = {}
    for base in dict.fromkeys(choice.base for choice in models):
        progress.check()
        progress.report(len(answered) * units, total, N_(f"Loading the model {base}"))
        progress.log(f"Loading the model {base}")
        answerer = Answerer(workspace, base)
        for choice in [choice for choice in models if choice.base == base]:
            offset = len(answered) * units
            progress.log(f"{choice.label}: answering {len(items)} prompts "
                         f"(temperature {choice.generation.temperature}, at most {choice.generation.max_new_tokens} tokens)")
            torch.manual_seed(seed)   # sampled answers are repeatable
            started = time.perf_counter()
            answers = answerer.answer([item.context for item in items], choice, batch_size=batch_size,
                                      progress=_shifted(progress, offset, total))
            seconds = time.perf_counter() - started
            scored = reference_nll(answerer, items, choice, batch_size, max_length,
                                   _shifted(progress, offset + len(items), total))
            answered[choice.key] = ModelAnswers(choice, [a.text for a in answers], [a.new_tokens for a in answers],
                                                seconds, scored)
        del answerer
        gc.collect()
    return [answered[choice.key] for choice in models]


def _shifted(progress: Progress, offset: int, total: int) -> Progress:
    """`progress` for one part of the job: its (done, count) reported as (offset + done, total)."""
    return replace(progress, report=lambda done, count, message: progress.report(offset + done, total, message))


def _estimates(columns: Columns) -> dict[str, dict[str, float | None]]:
    return {name: stats.interval(name, columns).to_json() for name in ALL_METRICS}


def _model_metrics(answers: ModelAnswers, items: list[Item]) -> dict[str, Any]:
    columns = answers.columns
    languages = [sample.language for sample in answers.samples]
    by_language = {}
    for code in sorted(set(languages)):
        rows = np.array([i for i, found in enumerate(languages) if found == code])
        by_language[code] = {"samples": len(rows), **_estimates(columns.subset(rows))}
    measured = [(nll, tokens) for nll, tokens in answers.nll if tokens and not math.isnan(nll)]
    generated = sum(answers.new_tokens)
    return {
        "label": answers.choice.label, "kind": answers.choice.kind, "adapter": str(answers.choice.adapter or ""),
        **_estimates(columns),
        "counts": {"samples": len(items), "by_language": {code: languages.count(code) for code in sorted(set(languages))},
                   "exact_matches": int(sum(s.exact_match > 0 for s in answers.samples)),
                   "empty_answers": sum(not text.strip() for text in answers.texts),
                   "perplexity_samples": len(measured), "reference_tokens": sum(tokens for _, tokens in measured),
                   "generated_tokens": generated},
        "lengths": scoring.length_stats(answers.samples),
        "by_language": by_language,
        "generation": answers.choice.generation.model_dump(),
        "template": answers.choice.template, "system_prompt": answers.choice.system_prompt,
        "tokens_per_s": round(generated / answers.seconds, 1) if answers.seconds else None,
    }


def per_sample(answers: ModelAnswers, index: int, name: str) -> float:
    """One sample's score under `name` (loss and perplexity from the reference likelihood)."""
    nll, tokens = answers.nll[index]
    if name in ("loss", "perplexity"):
        loss = nll / tokens if tokens and not math.isnan(nll) else float("nan")
        return math.exp(loss) if name == "perplexity" and not math.isnan(loss) else loss
    return float(getattr(answers.samples[index], name))


def _comparison(model: ModelAnswers, baseline: ModelAnswers) -> dict[str, Any]:
    deltas = {}
    for name in ALL_METRICS:
        delta = stats.paired_delta(name, model.columns, baseline.columns).to_json()
        direction = -1 if name in LOWER_IS_BETTER else 1
        ours = np.array([direction * per_sample(model, i, name) for i in range(len(model.samples))])
        theirs = np.array([direction * per_sample(baseline, i, name) for i in range(len(baseline.samples))])
        found = stats.signs(ours, theirs)
        deltas[name] = {**delta, "better": found.count("better"), "worse": found.count("worse"), "same": found.count("same")}
    return {"model": model.choice.key, "baseline": baseline.choice.key, "deltas": deltas}


def _changes(model: ModelAnswers, baseline: ModelAnswers, index: int) -> dict[str, str]:
    """Per metric, whether this sample's answer is better, worse or the same as the baseline's."""
    changes = {}
    for name in (*scoring.METRICS, "loss"):
        direction = -1 if name == "loss" else 1
        ours, theirs = direction * per_sample(model, index, name), direction * per_sample(baseline, index, name)
        changes[name] = stats.signs(np.array([ours]), np.array([theirs]))[0]
    return changes


def _prediction_lines(items: list[Item], everyone: list[ModelAnswers], baseline: ModelAnswers | None) -> list[str]:
    lines = []
    for item in items:
        i = item.index
        for answers in everyone:
            scores = {**answers.samples[i].scores(), "loss": _rounded(per_sample(answers, i, "loss")),
                      "perplexity": _rounded(per_sample(answers, i, "perplexity"))}
            line: dict[str, Any] = {
                "index": i, "source": item.source, "language": answers.samples[i].language, "prompt": item.prompt,
                "context": item.context, "reference": item.reference, "model": answers.choice.key,
                "model_label": answers.choice.label, "prediction": answers.texts[i], "new_tokens": answers.new_tokens[i],
                "scores": scores}
            if baseline is not None and answers is not baseline:
                line["change"] = _changes(answers, baseline, i)
            lines.append(json.dumps(line, ensure_ascii=False))
    return lines


def _rounded(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 4)


def evaluate(workspace: Workspace, folder: Path, request: EvalRequest, progress: Progress = QUIET) -> dict[str, Any]:
    """Run the evaluation `request` describes and write its results into `folder` (see the module doc)."""
    started = now_iso()
    config = records.load_config(workspace.run_folder(request.run_id))
    held_out = held_out_set(workspace, request)
    models = model_choices(workspace, request)
    progress.log(f"Evaluating on the {held_out.name}: {', '.join(choice.label for choice in models)}")
    everyone = _answer_all(workspace, held_out.items, models, request.batch_size, config.train.max_seq_length,
                           config.train.seed, progress)
    progress.check()
    codes = [scoring.language(item.reference) for item in held_out.items]
    for answers in everyone:
        answers.samples = [scoring.score(text, item.reference, code)
                           for text, item, code in zip(answers.texts, held_out.items, codes)]
    baseline = everyone[0] if request.include_base else None
    compared = [a for a in everyone if a is not baseline] if baseline else everyone[1:]
    anchor = baseline or everyone[0]
    metrics = {
        "complete": True, "eval_id": folder.name, "run": request.run_id, "created": started, "finished": now_iso(),
        "held_out": {"name": held_out.name, **held_out.origin, "samples": len(held_out.items),
                     "languages": {code: codes.count(code) for code in sorted(set(codes))}},
        "request": request.to_settings(),
        "baseline": anchor.choice.key,
        "models": {answers.choice.key: _model_metrics(answers, held_out.items) for answers in everyone},
        "comparisons": [_comparison(answers, anchor) for answers in compared],
        "higher_is_better": {name: name not in LOWER_IS_BETTER for name in ALL_METRICS},
        "bootstrap": {"resamples": stats.RESAMPLES, "level": stats.LEVEL, "seed": stats.SEED},
    }
    atomic_write_text(folder / PREDICTIONS_FILE, "".join(line + "\n" for line in _prediction_lines(
        held_out.items, everyone, baseline or (everyone[0] if len(everyone) > 1 else None))))
    atomic_write_json(folder / METRICS_FILE, metrics)
    return metrics


def summary_line(metrics: dict[str, Any]) -> str:
    """One line: the evaluated run's BLEU/chrF/ROUGE-L (and the change against the base)."""
    run_key = f"run:{metrics['run']}"
    model = metrics["models"].get(run_key) or next(iter(metrics["models"].values()))
    prompts = metrics["held_out"]["samples"]
    scores = ", ".join(f"{name} {model[name]['value']:.1f}" for name in ("bleu", "chrf", "rougeL")
                       if model[name]["value"] is not None)
    comparison = next((entry for entry in metrics["comparisons"] if entry["model"] == run_key), None)
    if comparison is None:
        return N_(f"{prompts} prompts: {scores}")
    delta, baseline = comparison["deltas"]["chrf"], comparison["baseline"]
    change, low, high = delta["delta"], delta["ci_low"], delta["ci_high"]
    return N_(f"{prompts} prompts: {scores}; chrF {change:+.1f} against {baseline} (95% CI {low:+.1f} to {high:+.1f})")

