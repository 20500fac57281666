"""The examples a run trains and validates on, built from its config: read, split, mix, tokenise, check.

    build(config, tokenizer, workspace) -> TrainingData(train, validation, report)

1. Read each training file (data.train_path, or every file of data.mix) with core.data.store.
2. Hold out validation rows (data.validation_ratio of each file, or data.validation_path instead) with
   the Data tab's leak-aware split (core.data.splits): near-duplicate prompts stay on one side, so
   validation never scores a question training has seen. Each file is split before mixing, so a
   repeated row can never land on both sides either.
3. Mix: the first file whole, every other file sampled to its share (repeating rows if it is small).
4. Tokenise with the chat template (core.models.templates), the system prompt in front; apply the truncation
   policy; give domain-keyword tokens their extra loss weight.
5. Refuse, naming row and cause, any conversation left without a supervised token.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from core.config import RunConfig
from core.data import splits, store
from core.data.formats import text_of
from core.errors import DataError
from core.models.templates import IGNORE_INDEX, TokenizedConversation, describe_template, tokenize_conversation
from core.text import N_
from core.workspace import Workspace

T = TypeVar("T")
_GUARD_EXAMPLES = 3


@dataclass(frozen=True)
class Example:
    """One tokenised conversation. `weights[i]` is the loss weight of `labels[i]` (1.0 unless a keyword)."""

    input_ids: list[int]
    labels: list[int]
    weights: list[float]
    source: str  # where it came from, for messages: "data.jsonl row 12"

    def __len__(self) -> int:
        return len(self.input_ids)


@dataclass(frozen=True)
class SourceCount:
    file: str
    rows: int         # conversations in the file
    train_rows: int   # rows it gives to training, after the validation split and the mix


@dataclass(frozen=True)
class TrainingReport:
    """What the run trains on, for the run log and summary.json's "data"."""

    template: str                  # the chat template, described
    sources: list[SourceCount]
    train_conversations: int
    validation_conversations: int
    validation_kept_together: int  # rows held on one side of the split with a near-duplicate prompt
    train_tokens: int
    supervised_tokens: int         # tokens that carry loss
    truncated: int
    dropped_too_long: int
    max_seq_length: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainingData:
    train: list[Example]
    validation: list[Example]
    report: TrainingReport

    @property
    def train_tokens(self) -> int:
        return sum(len(example) for example in self.train)


def resolve_path(path: str, workspace: Workspace) -> Path:
    """A data path as the user wrote it: absolute, or relative to the workspace."""
    given = Path(path).expanduser()
    return given if given.is_absolute() else workspace.root / given


def split_validation(rows: Sequence[T], conversations: Sequence[list[dict[str, str]]], ratio: float, seed: int,
                     file_name: str) -> splits.Split[T]:
    """One file's rows (`conversations[i]` is the conversation of `rows[i]`) split by the Data tab's
    leak-aware split: about `ratio` held out, at least one when ratio > 0, seeded. Nothing is held out
    when the ratio is 0 or the file has a single row (it cannot be split; in a mix, the other files
    still give validation rows). DataError, naming the file and the fixes, when near-duplicates make
    every held-out set leak."""
    if ratio == 0 or len(rows) < 2:
        return splits.Split(list(rows), [], kept_together=0, leaks=0)
    try:
        return splits.split(rows, [text_of(messages, "user") for messages in conversations], ratio, seed)
    except DataError as error:
        fix = ("Remove near-duplicates in the Data tab, raise data.validation_ratio, give a separate "
               "data.validation_path, or set data.validation_ratio to 0.")
        # Not an f-string: as a catalogued template, "{file_name}: {error.problem}" would match any text with a colon.
        raise DataError(file_name + ": " + error.problem, fix) from None


def mix_counts(sizes: Sequence[int], shares: Sequence[float]) -> list[int]:
    """How many rows each source gives: the first all of its rows, the others in proportion to their share."""
    anchor = sizes[0] / shares[0]
    return [sizes[0], *[max(1, round(anchor * share)) for share in shares[1:]]]


def sample_rows(rows: Sequence[T], count: int, rng: random.Random) -> list[T]:
    """`count` rows: shuffled passes over `rows`, so each is repeated as evenly as possible."""
    picked: list[T] = []
    while len(picked) < count:
        order = list(rows)
        rng.shuffle(order)
        picked.extend(order[:count - len(picked)])
    return picked


def keyword_weights(tokenized: TokenizedConversation, keywords: Sequence[str], weight: float) -> list[float]:
    """`weight` for supervised tokens that overlap a keyword (matched case-insensitively), 1.0 elsewhere."""
    pattern = "|".join(re.escape(word) for word in sorted(keywords, key=len, reverse=True) if word.strip())
    spans = [match.span() for match in re.finditer(pattern, tokenized.text, re.IGNORECASE)] if pattern else []
    return [
        weight if label != IGNORE_INDEX and any(start < end_kw and end > start_kw for start_kw, end_kw in spans) else 1.0
        for label, (start, end) in zip(tokenized.labels, tokenized.offsets)
    ]


@dataclass
class _Source:
    """A file's conversations, each tagged with where it came from."""

    name: str
    rows: list[tuple[str, list[dict[str, str]]]]


def _read(path_text: str, workspace: Workspace) -> _Source:
    path = resolve_path(path_text, workspace)
    conversations = store.load_conversations(path)
    if not conversations:
        raise DataError(f"The dataset {path} holds no conversations.", "Pick a dataset version with rows in it.")
    return _Source(path.name, [(f"{path.name} row {i}", messages) for i, messages in enumerate(conversations, 1)])


def _tokenize(rows: list[tuple[str, list[dict[str, str]]]], tokenizer: Any, config: RunConfig,
              counts: dict[str, int]) -> list[Example]:
    """Tokenise, apply the truncation policy (counting what it touched), weight keywords, and refuse
    rows without a supervised token."""
    limit, policy = config.train.max_seq_length, config.train.truncation
    examples: list[Example] = []
    unsupervised: list[str] = []
    fixes: dict[str, str] = {}
    for source, messages in rows:
        tokenized = tokenize_conversation(tokenizer, messages, config.model.template, config.data.system_prompt)
        if len(tokenized.input_ids) > limit:
            if policy == "drop":
                counts["dropped_too_long"] += 1
                continue
            counts["truncated"] += 1
            full_supervised = tokenized.supervised_count
            tokenized = tokenized.truncated(limit)
            if full_supervised and not tokenized.supervised_count:
                unsupervised.append(N_(f"{source} (its prompt alone is longer than train.max_seq_length={limit})"))
                fixes["long"] = N_("Raise train.max_seq_length or set train.truncation to drop.")
                continue
        if not tokenized.supervised_count:
            has_reply = any(message.get("role") == "assistant" for message in messages)
            if has_reply:
                unsupervised.append(N_(f"{source} (the chat template leaves none of its reply to train on)"))
                fixes["template"] = N_("Choose a built-in layout in model.template.")
            else:
                unsupervised.append(N_(f"{source} (it has no assistant reply)"))
                fixes["reply"] = N_("Give each conversation an assistant reply (fix or remove those rows in the Data tab).")
            continue
        weights = keyword_weights(tokenized, config.data.keywords, config.train.keyword_loss_weight)
        examples.append(Example(tokenized.input_ids, tokenized.labels, weights, source))
    if unsupervised:
        shown = "; ".join(unsupervised[:_GUARD_EXAMPLES])
        if len(unsupervised) > _GUARD_EXAMPLES:   # one value, so that the message's template matches
            shown = N_(f"{shown} and {len(unsupervised) - _GUARD_EXAMPLES} more")
        raise DataError(f"{len(unsupervised)} conversation(s) have nothing to learn from: {shown}.",
                        " ".join(fixes.values()))   # whole sentences (the usual single one is catalogued)
    return examples


Row = tuple[str, list[dict[str, str]]]   # (where it came from, the conversation)


@dataclass
class HeldOut:
    """Steps 1-2: each training file read and split, and the validation rows the run holds out."""

    sources: list[_Source]
    splits: list[splits.Split[Row]]
    validation: list[Row]


def hold_out(config: RunConfig, workspace: Workspace) -> HeldOut:
    """Read the run's files and hold out its validation rows exactly as training does (evaluation scores a
    run on these same rows)."""
    sources = [_read(path, workspace) for path in config.data.mix or {config.data.train_path: 1.0}]
    ratio = 0.0 if config.data.validation_path else config.data.validation_ratio
    held_out = [split_validation(source.rows, [messages for _, messages in source.rows], ratio, config.train.seed,
                                 source.name) for source in sources]
    validation = [row for split in held_out for row in split.validation]
    if config.data.validation_path:
        validation = _read(config.data.validation_path, workspace).rows
    return HeldOut(sources, held_out, validation)


def build(config: RunConfig, tokenizer: Any, workspace: Workspace) -> TrainingData:
    """Everything the run trains and validates on (see the module doc); raises DataError with the fix."""
    mix = config.data.mix or {config.data.train_path: 1.0}
    seed = config.train.seed
    parts = hold_out(config, workspace)
    sources, held_out, validation_rows = parts.sources, parts.splits, parts.validation
    train_parts = [split.train for split in held_out]

    counts = mix_counts([len(part) for part in train_parts], list(mix.values()))
    rng = random.Random(seed)
    train_rows = train_parts[0] + [row for part, count in zip(train_parts[1:], counts[1:])
                                   for row in sample_rows(part, count, rng)]

    tallies = {"truncated": 0, "dropped_too_long": 0}
    train = _tokenize(train_rows, tokenizer, config, tallies)
    validation = _tokenize(validation_rows, tokenizer, config, tallies)
    if not train:
        raise DataError("No training conversation is left after applying train.truncation=drop.",
                        "Raise train.max_seq_length or set train.truncation to truncate.")
    supervised = sum(sum(label != IGNORE_INDEX for label in example.labels) for example in train)
    report = TrainingReport(
        template=describe_template(tokenizer, config.model.template),
        sources=[SourceCount(source.name, len(source.rows), count) for source, count in zip(sources, counts)],
        train_conversations=len(train), validation_conversations=len(validation),
        validation_kept_together=sum(split.kept_together for split in held_out),
        train_tokens=sum(len(example) for example in train), supervised_tokens=supervised,
        truncated=tallies["truncated"], dropped_too_long=tallies["dropped_too_long"],
        max_seq_length=config.train.max_seq_length)
    return TrainingData(train, validation, report)
