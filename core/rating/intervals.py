"""95% confidence intervals for the two kinds of figure rating results report, from scipy.

    Mean.of([3, 4, 2.5], (1, 4))   a mean score: Student's t over the values (item means, so raters who
                                   rated the same item count once), kept within the scale's ends
    Share.of(7, 10)           a rate (win, tie, pass): the Wilson score interval, sound for small counts
                              and for rates near 0 or 1, where the textbook ±1.96·SE interval is not
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats

from core.text import N_

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Mean:
    value: float
    n: int
    low: float | None     # None with fewer than two values: no interval can be given
    high: float | None

    @classmethod
    def of(cls, values: Sequence[float], bounds: tuple[float, float] = (-math.inf, math.inf)) -> Mean:
        """With few items the t interval can reach past the scale (e.g. below 1 on 1-4), where no mean can
        be: it is cut at `bounds`."""
        n = len(values)
        if n == 0:
            raise ValueError("a mean of no values")
        mean = statistics.fmean(values)
        if n < 2:
            return cls(mean, n, None, None)
        margin = stats.t.ppf((1 + CONFIDENCE) / 2, n - 1) * statistics.stdev(values) / math.sqrt(n)
        return cls(mean, n, max(bounds[0], mean - margin), min(bounds[1], mean + margin))

    def words(self, digits: int = 2) -> str:
        """'3.25 (95% CI 2.90–3.60, n=12)'."""
        value = f"{self.value:.{digits}f}"
        if self.low is None or self.high is None:
            return N_(f"{value} (n={self.n})")
        low, high = f"{self.low:.{digits}f}", f"{self.high:.{digits}f}"
        return N_(f"{value} (95% CI {low}–{high}, n={self.n})")


@dataclass(frozen=True)
class Share:
    count: int
    total: int
    low: float | None     # None when total is 0
    high: float | None

    @classmethod
    def of(cls, count: int, total: int) -> Share:
        if total == 0:
            return cls(0, 0, None, None)
        interval = stats.binomtest(count, total).proportion_ci(confidence_level=CONFIDENCE, method="wilson")
        return cls(count, total, float(interval.low), float(interval.high))

    @property
    def rate(self) -> float | None:
        return self.count / self.total if self.total else None

    def words(self) -> str:
        """'70% (95% CI 40–89%, 7 of 10)'."""
        if not self.total or self.low is None or self.high is None:
            return N_("no ratings yet")
        share, low, high = f"{self.count / self.total:.0%}", f"{self.low:.0%}", f"{self.high:.0%}"
        return N_(f"{share} (95% CI {low}–{high}, {self.count} of {self.total})")
