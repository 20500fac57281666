"""Inter-annotator agreement: how much raters agree beyond what chance alone would give, in figures and words.

    alpha(units, levels, ordinal)    Krippendorff's alpha (the `krippendorff` package): any number of raters,
                                     items rated by only some of them; ordinal for scales and preferences
                                     (1 vs 2 is a smaller disagreement than 1 vs 4), nominal for choices
    kappas(units, levels, ordinal)   Cohen's kappa for each pair of raters over the items both rated
                                     (scikit-learn; linearly weighted for ordinal criteria)

`units` maps each item to the rank (0 for the first level) each rater gave it. Both measures need items
rated by two or more raters, so a session measures agreement only with an overlap of 2 or more.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import krippendorff
import numpy as np
from sklearn.metrics import cohen_kappa_score

from core.text import N_

Units = Mapping[int, Mapping[str, int]]   # item -> rater -> rank of the level given

ALPHA_EXPLAINED = N_(
    "Krippendorff's alpha (α) measures how much raters agree beyond chance: 1 means they always agree, 0 that "
    "they agree no more than if they had rated at random, below 0 that they disagree systematically. Scales "
    "count a near miss (3 vs 4) as a smaller disagreement than a far one (1 vs 4). Krippendorff's rule of thumb: "
    "rely on α ≥ 0.8, draw tentative conclusions from 0.667 to 0.8, and below that sharpen the instructions "
    "before trusting the scores.")
KAPPA_EXPLAINED = N_(
    "Cohen's kappa (κ) compares two raters on the items both rated, on the same 0-to-1 idea as alpha (weighted "
    "for scales, so near misses count less). Usual reading (Landis & Koch): below 0 poor, up to 0.2 slight, "
    "0.2-0.4 fair, 0.4-0.6 moderate, 0.6-0.8 substantial, above 0.8 almost perfect.")


@dataclass(frozen=True)
class Alpha:
    value: float | None                  # None when it cannot be computed; `words` says why
    level: Literal["ordinal", "nominal"]
    items: int                           # items rated by two or more raters: what alpha is computed on
    raters: int
    words: str


@dataclass(frozen=True)
class Kappa:
    rater_a: str
    rater_b: str
    items: int                           # items both rated
    value: float | None
    weighted: bool
    words: str


def alpha(units: Units, levels: int, ordinal: bool) -> Alpha:
    level: Literal["ordinal", "nominal"] = "ordinal" if ordinal else "nominal"
    raters = sorted({rater for given in units.values() for rater in given})
    shared = [item for item, given in sorted(units.items()) if len(given) >= 2]
    if not shared:
        return Alpha(None, level, 0, len(raters), N_("Not measurable yet: no item has been rated by two raters."))
    ranks = {rank for item in shared for rank in units[item].values()}
    if len(ranks) < 2:
        return Alpha(None, level, len(shared), len(raters), N_("Every rating of the shared items is the same, so raters "
                     "agree completely, but there is no variation for alpha to measure."))
    matrix = np.full((len(raters), len(shared)), np.nan)
    for column, item in enumerate(shared):
        for rater, rank in units[item].items():
            matrix[raters.index(rater), column] = rank
    value = float(krippendorff.alpha(reliability_data=matrix, value_domain=list(range(levels)),
                                     level_of_measurement=level))
    return Alpha(value, level, len(shared), len(raters), alpha_words(value))


def alpha_words(value: float) -> str:
    if value >= 0.8:
        return N_("Good agreement: these scores can be relied on.")
    if value >= 0.667:
        return N_("Acceptable agreement: fine for tentative conclusions.")
    if value > 0:
        return N_("Low agreement: raters agree only somewhat more than chance; review the disagreements below.")
    return N_("No agreement beyond chance: raters may be reading the levels differently.")


def kappas(units: Units, levels: int, ordinal: bool) -> list[Kappa]:
    """Cohen's kappa for every pair of raters who both rated at least two items."""
    raters = sorted({rater for given in units.values() for rater in given})
    found = []
    for rater_a, rater_b in itertools.combinations(raters, 2):
        both = [item for item, given in sorted(units.items()) if rater_a in given and rater_b in given]
        if len(both) < 2:
            continue
        first, second = [units[item][rater_a] for item in both], [units[item][rater_b] for item in both]
        with warnings.catch_warnings():   # an undefined kappa (no variation) comes back as NaN, handled below
            warnings.simplefilter("ignore")
            value = float(cohen_kappa_score(first, second, labels=list(range(levels)),
                                            weights="linear" if ordinal else None))
        if math.isnan(value):
            found.append(Kappa(rater_a, rater_b, len(both), None, ordinal,
                               N_("undefined: both gave one and the same level throughout")))
        else:
            found.append(Kappa(rater_a, rater_b, len(both), value, ordinal, kappa_words(value)))
    return found


def kappa_words(value: float) -> str:
    for bound, words in ((0.0, N_("poor")), (0.2, N_("slight")), (0.4, N_("fair")), (0.6, N_("moderate")),
                         (0.8, N_("substantial"))):
        if value <= bound:
            return words
    return N_("almost perfect")
