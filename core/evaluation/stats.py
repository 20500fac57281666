"""Confidence intervals by the bootstrap, and paired differences between two models on the same prompts.

    interval("bleu", columns)                  -> Estimate(value, ci_low, ci_high)
    paired_delta("bleu", tuned, base)          -> Delta(delta, ci_low, ci_high)

Samples are drawn with replacement, the metric is recomputed on each resampled set (corpus BLEU and chrF
from summed statistics, as sacrebleu's own bootstrap does), and the 2.5th and 97.5th percentiles bound the
95% interval. A paired delta resamples the same prompts for both models, so the interval reflects the
difference on each prompt, not the spread of two independent sets: when it excludes 0 the change is
unlikely to be chance. Seeded, so the same results give the same intervals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.evaluation.scoring import Columns, metric_value

RESAMPLES = 1000
SEED = 12345
LEVEL = 0.95


@dataclass(frozen=True)
class Estimate:
    value: float
    ci_low: float
    ci_high: float

    def to_json(self) -> dict[str, float | None]:
        return {"value": _round(self.value), "ci_low": _round(self.ci_low), "ci_high": _round(self.ci_high)}


@dataclass(frozen=True)
class Delta:
    delta: float
    ci_low: float
    ci_high: float

    @property
    def significant(self) -> bool:
        """The 95% interval excludes 0."""
        return self.ci_low > 0 or self.ci_high < 0

    def to_json(self) -> dict[str, float | bool | None]:
        return {"delta": _round(self.delta), "ci_low": _round(self.ci_low), "ci_high": _round(self.ci_high),
                "significant": self.significant}


def _round(value: float) -> float | None:
    return None if value is None or np.isnan(value) else round(float(value), 4)


def resamples(count: int, resample_count: int = RESAMPLES, seed: int = SEED) -> np.ndarray:
    """(resample_count, count) row indices, drawn with replacement."""
    return np.random.default_rng(seed).integers(0, count, size=(resample_count, count))


def _bounds(values: np.ndarray) -> tuple[float, float]:
    values = values[~np.isnan(values)]
    if not len(values):
        return float("nan"), float("nan")
    tail = (1 - LEVEL) / 2 * 100
    return float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))


def _replicates(name: str, columns: Columns, draws: np.ndarray) -> np.ndarray:
    if name in ("bleu", "chrf"):
        from core.evaluation.scoring import bleu_from_stats, chrf_from_stats

        stats, compute = (columns.bleu_stats, bleu_from_stats) if name == "bleu" else (columns.chrf_stats, chrf_from_stats)
        return np.array([compute(row) for row in stats[draws].sum(axis=1)])
    if name == "perplexity":
        nll, tokens = columns.nll[draws], columns.tokens[draws]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.exp(np.nansum(nll, axis=1) / np.where(np.isnan(nll), 0, tokens).sum(axis=1))
    return columns.per_sample[name][draws].mean(axis=1)


def interval(name: str, columns: Columns, resample_count: int = RESAMPLES, seed: int = SEED) -> Estimate:
    """The metric on the set with its bootstrap 95% interval."""
    value = metric_value(name, columns)
    if len(columns) == 0 or np.isnan(value):
        return Estimate(value, float("nan"), float("nan"))
    return Estimate(value, *_bounds(_replicates(name, columns, resamples(len(columns), resample_count, seed))))


def paired_delta(name: str, model: Columns, baseline: Columns, resample_count: int = RESAMPLES,
                 seed: int = SEED) -> Delta:
    """`model`'s metric minus `baseline`'s on the same samples (row i is the same prompt in both), with a
    paired bootstrap 95% interval."""
    if len(model) != len(baseline):
        raise ValueError("paired samples must be the same prompts")
    delta = metric_value(name, model) - metric_value(name, baseline)
    if len(model) == 0 or np.isnan(delta):
        return Delta(delta, float("nan"), float("nan"))
    draws = resamples(len(model), resample_count, seed)
    return Delta(delta, *_bounds(_replicates(name, model, draws) - _replicates(name, baseline, draws)))


def signs(model: np.ndarray, baseline: np.ndarray, tolerance: float = 1e-9) -> list[str]:
    """Per sample: "better", "worse" or "same" (higher is better)."""
    return ["better" if m > b + tolerance else "worse" if m < b - tolerance else "same" for m, b in zip(model, baseline)]
