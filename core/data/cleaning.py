"""Cleaning: decide for every row whether it is kept or rejected and why. Nothing is dropped silently:
kept + rejected = rows in, and every rejected row keeps its source line, reasons and details.

Steps, each switchable, in the order they run:
  low_quality      empty/short answers, answers repeating the prompt, runaway repetition, mojibake,
                   placeholder text (core.data.quality)
  too_long         more tokens than `max_tokens` under the model's tokenizer and chat template (core.data.lengths);
                   rows the template cannot lay out are rejected as "template_error"
  duplicates       the same conversation after normalising width, case and whitespace; the first is kept
  near_duplicates  answers at least `near_duplicate_threshold` similar (MinHash estimate of the Jaccard
                   similarity of 3-character shingles), rows overlapping at least MIN_ROW_OVERLAP and the
                   same numbers in both answers; the first is kept
  contradictions   the same question answered differently: answers that are the same statement but for
                   their numbers (hours, prices, phone numbers), or prompts at least `same_question_threshold`
                   similar (a preamble most prompts share left out) whose answers are not near-duplicates.
                   Rows are grouped; each group is resolved by the user: keep all (flagged), keep one, drop all
  pii              personal data (core.data.pii) is flagged on kept rows, and masked when `mask_pii` is set

Row checks run first, and duplicates are searched only among rows that passed them, so no row is
rejected as a copy of a row that is itself rejected. Rows restored by the user ("restored": true) are
never rejected again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from core.data import formats, pii, quality, similarity
from core.data.lengths import DEFAULT_MAX_TOKENS, TokenCounter
from core.data.reports import ContradictionGroup, GroupRow
from core.errors import DataError
from core.progress import QUIET, Progress
from core.text import N_

STEPS = ("low_quality", "too_long", "duplicates", "near_duplicates", "contradictions", "pii")
REASONS = ("invalid", "duplicate", "near_duplicate", "contradiction", "low_quality", "too_long", "template_error")
KEEP_ALL, KEEP_FIRST, DROP_ALL = "keep-all", "keep-first", "drop-all"
GROUP_POLICIES = (KEEP_ALL, KEEP_FIRST, DROP_ALL)
KEEP_LINE = "keep:"            # "keep:62" keeps source line 62 of a group and rejects the rest
MIN_ROW_OVERLAP = 0.3          # near-same answers to unrelated questions ("Yes.") are not duplicates
NUMBERS_ONLY_SIMILARITY = 0.8  # answers this alike once numbers are blanked out state the same thing
_NUMBER = re.compile(r"\d+(?:[.:,]\d+)*")
_GROUP_TEXT_CHARS = 500
GROUP_ROWS_SHOWN = 12          # rows of a contradiction group whose texts the report carries


@dataclass(frozen=True)
class CleanOptions:
    steps: tuple[str, ...] = STEPS
    near_duplicate_threshold: float = 0.6
    same_question_threshold: float = 0.6
    min_response_chars: int = quality.DEFAULT_MIN_RESPONSE_CHARS
    max_tokens: int = DEFAULT_MAX_TOKENS
    mask_pii: bool = False
    contradictions: str = KEEP_ALL        # for groups the user has not resolved one by one
    resolutions: Mapping[str, str] = field(default_factory=dict)   # group id → a policy or "keep:<line>"

    def __post_init__(self) -> None:
        unknown = sorted(set(self.steps) - set(STEPS))
        if unknown:
            raise DataError(f"Unknown cleaning step(s): {', '.join(unknown)}.", f"Choose from: {', '.join(STEPS)}.")
        for name in ("near_duplicate_threshold", "same_question_threshold"):
            if not 0.05 <= getattr(self, name) <= 1:
                raise DataError(f"{name} must be between 0.05 and 1, not {getattr(self, name)}.", "Pick a value like 0.6.")
        if self.max_tokens < 1 or self.min_response_chars < 0:
            raise DataError("The longest row must be at least 1 token and the shortest answer 0 or more characters.")
        if self.contradictions not in GROUP_POLICIES:
            raise DataError(f"Unknown contradiction policy '{self.contradictions}'.", f"Use one of: {', '.join(GROUP_POLICIES)}.")

    def parameters(self) -> dict[str, Any]:
        """The settings as plain data, recorded in a version's lineage."""
        values = asdict(self)
        values["steps"], values["resolutions"] = list(self.steps), dict(self.resolutions)
        return values


@dataclass
class CleanResult:
    kept: list[dict[str, Any]]
    rejected: list[dict[str, Any]]            # the row as it came, plus "reasons" and "details"
    groups: list[ContradictionGroup]          # with their resolution
    reasons: dict[str, int]                   # rows rejected per reason (a row can have several)
    flags: dict[str, int]                     # kept rows flagged: pii, contradiction


class _Decisions:
    """Reasons collected per row; rows the user restored are never rejected."""

    def __init__(self, rows: Sequence[dict[str, Any]]) -> None:
        self.found: list[list[tuple[str, str]]] = [[] for _ in rows]
        self.protected = [bool(row.get("restored")) for row in rows]
        self.group_of: dict[int, str] = {}   # kept members of contradiction groups → group id

    def reject(self, index: int, reason: str, detail: str) -> None:
        if not self.protected[index]:
            self.found[index].append((reason, detail))

    def alive(self, indices: Sequence[int]) -> list[int]:
        return [i for i in indices if not self.found[i]]


STAGES = (N_("Checking quality"), N_("Counting tokens"), N_("Finding duplicates"),
          N_("Finding near-duplicates and contradictions"))


def clean(rows: Sequence[dict[str, Any]], options: CleanOptions, counter: TokenCounter | None = None,
          progress: Progress = QUIET) -> CleanResult:
    """Every row kept or rejected (with reasons) under `options`. `counter` is needed for too_long.
    `progress` hears of each stage as it starts, and may cancel between stages."""
    def stage(number: int) -> None:
        progress.check()
        progress.report(number, len(STAGES), STAGES[number])

    decisions = _Decisions(rows)
    stage(0)
    conversations = [row["messages"] for row in rows]
    lines = [row["source_line"] for row in rows]
    folded = [[similarity.comparable(m["content"]) for m in messages] for messages in conversations]
    if "low_quality" in options.steps:
        for index, messages in enumerate(conversations):
            for problem in quality.problems(messages, options.min_response_chars, folded[index]):
                decisions.reject(index, "low_quality", problem)
    stage(1)
    if "too_long" in options.steps:
        if counter is None:
            raise DataError("The 'too long' step needs the model's tokenizer.", "Pick a model, or switch the step off.")
        over, broken = counter.over_limit(conversations, options.max_tokens)
        for index, tokens in over.items():
            decisions.reject(index, "too_long", N_(f"{tokens} tokens, over the limit of {options.max_tokens}"))
        for index, why in broken.items():
            decisions.reject(index, "template_error", why)

    alive = decisions.alive(range(len(rows)))
    texts = {i: [(m["role"], text) for m, text in zip(conversations[i], folded[i])] for i in alive}
    stage(2)
    if "duplicates" in options.steps:
        first_seen: dict[tuple, int] = {}
        for index in alive:
            first = first_seen.setdefault(tuple(texts[index]), index)
            if first != index:
                decisions.reject(index, "duplicate", N_(f"same as line {lines[first]}"))
        alive = decisions.alive(alive)

    stage(3)
    groups: list[ContradictionGroup] = []
    if {"near_duplicates", "contradictions"} & set(options.steps) and len(alive) > 1:
        groups = _similar_rows(alive, texts, lines, conversations, decisions, options)

    progress.check()
    return _result(rows, decisions, groups, options)


def _similar_rows(alive: list[int], texts: dict[int, list[tuple[str, str]]], lines: list[int],
                  conversations: Sequence[list[dict[str, str]]], decisions: _Decisions,
                  options: CleanOptions) -> list[ContradictionGroup]:
    """Reject near-duplicates, then group and resolve contradictions among the rows left.
    Positions below are indices into `alive`."""
    prompts = ["\n".join(t for role, t in texts[i] if role == "user") for i in alive]
    answers = ["\n".join(t for role, t in texts[i] if role == "assistant") for i in alive]
    # Prompts often share a preamble ("Answer as the clinic's front desk: …"): compare what differs.
    prompt_sigs = similarity.signatures(prompts, similarity.common_shingles(prompts))
    answer_sigs = similarity.signatures(answers)
    same_answer = similarity.similar_pairs(answer_sigs, options.near_duplicate_threshold)
    same_answer = same_answer[similarity.pair_similarity(same_answer, prompt_sigs, answer_sigs) >= MIN_ROW_OVERLAP]
    numbers: dict[int, set[str]] = {}

    def same_numbers(pairs: np.ndarray) -> np.ndarray:
        for position in similarity.unique(pairs.ravel()).tolist():
            if position not in numbers:
                numbers[position] = set(_NUMBER.findall(answers[position]))
        return np.array([numbers[a] == numbers[b] for a, b in pairs.tolist()], dtype=bool).reshape(len(pairs))

    equal = same_numbers(same_answer)
    near = same_answer[equal]
    if "near_duplicates" in options.steps:
        for members in similarity.groups(len(alive), near):
            for member in members[1:]:
                decisions.reject(alive[member], "near_duplicate", N_(f"near-duplicate of line {lines[alive[members[0]]]}"))
    if "contradictions" not in options.steps:
        return []
    same_question = similarity.similar_pairs(prompt_sigs, options.same_question_threshold)
    same_question = same_question[~np.isin(_codes(same_question, len(alive)), _codes(near, len(alive)))]
    # The same statement with other numbers (hours, prices, phone numbers) answers the same question
    # differently, even when the prompts are worded apart; similar answers that differ in more than
    # their numbers are simply different rows.
    other_numbers = same_answer[~equal]
    restated = np.array([_only_numbers_differ(answers[a], answers[b]) for a, b in other_numbers.tolist()], dtype=bool)
    conflict = np.concatenate([other_numbers[restated.reshape(len(other_numbers))], same_question])
    still = np.array([not decisions.found[index] for index in alive], dtype=bool)
    conflict = conflict[still[conflict[:, 0]] & still[conflict[:, 1]]]
    groups: list[ContradictionGroup] = []
    used_ids: set[str] = set()
    for members in similarity.groups(len(alive), conflict):
        indices = [alive[m] for m in members]
        group_id = _unique_id(f"c{lines[indices[0]]}", used_ids)
        groups.append(_resolve(group_id, indices, lines, conversations, decisions, options))
    return groups


def _only_numbers_differ(first: str, second: str) -> bool:
    """Whether two texts are the same but for their numbers (Jaccard of their shingles with every
    number written as 0 at least NUMBERS_ONLY_SIMILARITY)."""
    left = set(similarity.shingles(_NUMBER.sub("0", first)))
    right = set(similarity.shingles(_NUMBER.sub("0", second)))
    return len(left & right) >= NUMBERS_ONLY_SIMILARITY * len(left | right)


def _codes(pairs: np.ndarray, count: int) -> np.ndarray:
    return pairs[:, 0] * count + pairs[:, 1]


def _unique_id(candidate: str, used: set[str]) -> str:
    chosen, n = candidate, 1
    while chosen in used:
        n += 1
        chosen = f"{candidate}-{n}"
    used.add(chosen)
    return chosen


def _kept_lines(group_id: str, group_lines: list[int], choice: str) -> list[int]:
    """The lines of a contradiction group that `choice` keeps."""
    if choice == KEEP_ALL:
        return group_lines
    if choice == KEEP_FIRST:
        return group_lines[:1]
    if choice == DROP_ALL:
        return []
    line = choice.removeprefix(KEEP_LINE)
    if choice.startswith(KEEP_LINE) and line.isdigit() and int(line) in group_lines:
        return [int(line)]
    raise DataError(f"'{choice}' is not a way to resolve contradiction group {group_id} ({len(group_lines)} rows, "
                    f"lines {', '.join(map(str, group_lines[:GROUP_ROWS_SHOWN]))}…).",
                    "Keep all, keep one of its lines, or drop all.")


def _resolve(group_id: str, indices: list[int], lines: list[int], conversations: Sequence[list[dict[str, str]]],
             decisions: _Decisions, options: CleanOptions) -> ContradictionGroup:
    """Apply the user's choice for one contradiction group and describe the group for the report
    (all its lines, the texts of the first GROUP_ROWS_SHOWN rows)."""
    choice = options.resolutions.get(group_id, options.contradictions)
    group_lines = [lines[i] for i in indices]
    kept = _kept_lines(group_id, group_lines, choice)
    keeping = set(kept)
    what = N_(f"line {kept[0]} was kept") if kept else N_("the whole group was dropped")
    for index in indices:
        if lines[index] in keeping:
            decisions.group_of[index] = group_id
        else:
            decisions.reject(index, "contradiction", N_(f"contradiction group {group_id} ({len(indices)} rows): {what}"))
    return ContradictionGroup(group_id, group_lines, choice, kept, [
        GroupRow(lines[i], formats.text_of(conversations[i], "user")[:_GROUP_TEXT_CHARS],
                 formats.text_of(conversations[i], "assistant")[:_GROUP_TEXT_CHARS]) for i in indices[:GROUP_ROWS_SHOWN]])


def _result(rows: Sequence[dict[str, Any]], decisions: _Decisions, groups: list[ContradictionGroup],
            options: CleanOptions) -> CleanResult:
    reasons = dict.fromkeys(REASONS, 0)
    flags = {"pii": 0, "contradiction": 0}
    kept, rejected = [], []
    for index, row in enumerate(rows):
        found = decisions.found[index]
        if found:
            names = list(dict.fromkeys(reason for reason, _ in found))
            for name in names:
                reasons[name] += 1
            rejected.append({**row, "reasons": names, "details": [detail for _, detail in found]})
            continue
        # Flags are this run's findings: earlier ones for contradictions and PII are recomputed.
        row_flags = {k: v for k, v in (row.get("flags") or {}).items() if k not in ("contradiction", "pii")}
        if index in decisions.group_of:
            row_flags["contradiction"] = decisions.group_of[index]
        messages = row["messages"]
        if "pii" in options.steps:
            kinds = pii.find("\n".join(m["content"] for m in messages))
            if kinds:
                row_flags["pii"] = sorted(kinds)
                if options.mask_pii:
                    messages = [{**m, "content": pii.mask(m["content"])} for m in messages]
        for name in flags:
            flags[name] += name in row_flags
        kept.append({**row, "messages": messages, **({"flags": row_flags} if row_flags else {})})
    return CleanResult(kept, rejected, groups, reasons, flags)
