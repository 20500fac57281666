"""Train/validation splits without leakage, and mixing two datasets at a ratio.

A split that puts one of two near-identical prompts in training and the other in validation measures
memory, not learning. So rows whose prompts are near-duplicates (MinHash, core.data.similarity) are kept
together on one side, and the finished split is checked: no validation prompt may be a near-duplicate
of a training prompt.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np

from core.data import formats, similarity
from core.data.reports import SplitFigures
from core.errors import DataError

Row = dict[str, Any]
T = TypeVar("T")
_RATIO = re.compile(r"^\s*(\d+)\s*[:/]\s*(\d+)\s*$")
_MAX_OVERSHOOT = 2   # a near-duplicate group may be held out whole if at most this many times the share asked


@dataclass(frozen=True)
class Split(Generic[T]):
    train: list[T]
    validation: list[T]
    kept_together: int   # rows that went to one side with a near-duplicate prompt
    leaks: int           # validation prompts that are near-duplicates of a training prompt (0 when sound)

    def figures(self) -> SplitFigures:
        return SplitFigures(len(self.train), len(self.validation), self.kept_together, self.leaks)


def prompts_of(rows: Sequence[Row]) -> list[str]:
    """The user turns of each stored row, the text a split compares."""
    return [formats.text_of(row["messages"], "user") for row in rows]


def _prompt_signatures(prompts: Sequence[str]) -> np.ndarray:
    folded = [similarity.comparable(prompt) for prompt in prompts]
    return similarity.signatures(folded, similarity.common_shingles(folded))


def leaks(train_prompts: Sequence[str], validation_prompts: Sequence[str], threshold: float) -> int:
    """How many validation prompts are at least `threshold` similar to a training prompt."""
    pairs = similarity.similar_pairs(_prompt_signatures([*train_prompts, *validation_prompts]), threshold)
    in_validation = pairs >= len(train_prompts)
    crossing = in_validation[:, 0] != in_validation[:, 1]
    return len(np.unique(pairs[crossing].max(axis=1)))


def split(rows: Sequence[T], prompts: Sequence[str], validation_ratio: float, seed: int = 0,
          threshold: float = 0.6) -> Split[T]:
    """About `validation_ratio` of the rows, and at least one, for validation, picked at random (repeatable
    with `seed`), rows whose prompts (`prompts[i]` is the user text of `rows[i]`) are near-duplicates kept
    on one side; both parts keep the rows' order.

    Near-duplicates travel as a group, so the share is filled with whole groups up to the target. When
    every group is larger than the target, the smallest is held out whole if it is at most twice the
    target (five copies of a question at a target of four is still a fair split); otherwise DataError."""
    if not 0 < validation_ratio < 1:
        raise DataError(f"The validation share must be between 0 and 1, not {validation_ratio}.", "Try 0.1 (10%).")
    if len(rows) < 2:
        raise DataError(f"{len(rows)} row(s) cannot be split: one side would be empty.", "Add rows.")
    target = min(len(rows) - 1, max(1, round(len(rows) * validation_ratio)))
    linked = similarity.groups(len(rows), similarity.similar_pairs(_prompt_signatures(prompts), threshold))
    grouped = {member for group in linked for member in group}
    units = linked + [[index] for index in range(len(rows)) if index not in grouped]
    random.Random(seed).shuffle(units)
    chosen: set[int] = set()
    for unit in units:
        if len(chosen) + len(unit) <= target:
            chosen.update(unit)
        if len(chosen) == target:
            break
    smallest = min(units, key=len)
    if not chosen and len(smallest) <= _MAX_OVERSHOOT * target and len(smallest) < len(rows):
        chosen.update(smallest)
    if not chosen:
        raise DataError(f"No validation rows can be held out of {len(rows)} rows at {validation_ratio:.0%}: every "
                        f"prompt has near-duplicates, in groups of {len(smallest)} rows or more, and a group stays on "
                        "one side.", "Remove near-duplicates (Data tab, Upload & clean) or raise the validation share.")
    def side(items: Sequence[Any], validation: bool) -> list[Any]:
        return [item for index, item in enumerate(items) if (index in chosen) == validation]

    leaked = leaks(side(prompts, False), side(prompts, True), threshold)
    return Split(side(rows, False), side(rows, True), len(grouped), leaked)


def parse_ratio(text: str) -> tuple[int, int]:
    """'8:2' → (8, 2)."""
    found = _RATIO.match(text or "")
    if not found or not all(int(part) > 0 for part in found.groups()):
        raise DataError(f"'{text}' is not a mixing ratio.", "Write two whole numbers above 0, like 8:2.")
    return int(found.group(1)), int(found.group(2))


def mix(base: Sequence[Row], other: Sequence[Row], ratio: tuple[int, int], rng: random.Random) -> tuple[list[Row], int]:
    """Every base row plus enough rows of `other` to make up ratio[1] parts to the base's ratio[0]:
    sampled without repeats while there are enough, repeated (each as evenly as possible) when not.
    Returns (mixed rows, other rows taken)."""
    if not base or not other:
        raise DataError("Both datasets must have rows to mix.", "Pick versions that hold conversations.")
    wanted = round(len(base) * ratio[1] / ratio[0])
    rounds, rest = divmod(wanted, len(other))
    taken = list(other) * rounds + rng.sample(list(other), rest)
    return [*base, *taken], len(taken)
