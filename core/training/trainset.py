"""The examples a run trains and validates on, built from its config: read, split, mix, tokenise, check.

    build(config, tokenizer, workspace) -> TrainingData(train, validation, report)

1. Read each training file (data.train_path, or every file of data.mix) with core.data.store.
2. Hold out validation rows (data.validation_ratio of each file, or data.validation_path instead),
   before mixing, so a repeated row can never land on both sides.
3. Mix: the first file whole, every other file sampled to its share (repeating rows if it is small).
4. Tokenise with the chat template (core.models.templates), the system prompt in front; apply the truncation
   policy; give domain-keyword tokens their extra loss weight.
5. Refuse, naming row and cause, any conversation left without a supervised token.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from core.config import RunConfig
from core.data import store
from core.errors import DataError
from core.models.templates import IGNORE_INDEX, TokenizedConversation, describe_template, tokenize_conversation
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


@dataclass
class TrainingData:
    train: list[Example]
    validation: list[Example]
    report: dict[str, Any] = field(default_factory=dict)  # counts for the run log and summary.json

    @property
    def train_tokens(self) -> int:
        return sum(len(example) for example in self.train)


def resolve_path(path: str, workspace: Workspace) -> Path:
    """A data path as the user wrote it: absolute, or relative to the workspace."""
    given = Path(path).expanduser()
    return given if given.is_absolute() else workspace.root / given


def split_validation(rows: Sequence[T], ratio: float, seed: int) -> tuple[list[T], list[T]]:
    """(train, validation): a seeded random `ratio` of the rows held out, at least one when ratio > 0."""
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    held = min(len(rows) - 1, max(1, round(len(rows) * ratio))) if ratio > 0 and len(rows) > 1 else 0
    held_out = set(order[:held])
    return ([row for i, row in enumerate(rows) if i not in held_out],
            [row for i, row in enumerate(rows) if i in held_out])


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
                unsupervised.append(f"{source} (its prompt alone is longer than train.max_seq_length={limit})")
                fixes["long"] = "raise train.max_seq_length or set train.truncation to drop"
                continue
        if not tokenized.supervised_count:
            has_reply = any(message.get("role") == "assistant" for message in messages)
            if has_reply:
                unsupervised.append(f"{source} (the chat template leaves none of its reply to train on)")
                fixes["template"] = "choose a built-in layout in model.template"
            else:
                unsupervised.append(f"{source} (it has no assistant reply)")
                fixes["reply"] = "give each conversation an assistant reply (fix or remove those rows in the Data tab)"
            continue
        weights = keyword_weights(tokenized, config.data.keywords, config.train.keyword_loss_weight)
        examples.append(Example(tokenized.input_ids, tokenized.labels, weights, source))
    if unsupervised:
        shown = "; ".join(unsupervised[:_GUARD_EXAMPLES])
        more = f" and {len(unsupervised) - _GUARD_EXAMPLES} more" if len(unsupervised) > _GUARD_EXAMPLES else ""
        remedy = "; ".join(fixes.values())
        raise DataError(f"{len(unsupervised)} conversation(s) have nothing to learn from: {shown}{more}.",
                        remedy[0].upper() + remedy[1:] + ".")
    return examples


def build(config: RunConfig, tokenizer: Any, workspace: Workspace) -> TrainingData:
    """Everything the run trains and validates on (see the module doc); raises DataError with the fix."""
    mix = config.data.mix or {config.data.train_path: 1.0}
    sources = [_read(path, workspace) for path in mix]
    seed = config.train.seed
    ratio = 0.0 if config.data.validation_path else config.data.validation_ratio
    splits = [split_validation(source.rows, ratio, seed) for source in sources]
    train_parts = [train for train, _ in splits]
    validation_rows = [row for _, validation in splits for row in validation]
    if config.data.validation_path:
        validation_rows = _read(config.data.validation_path, workspace).rows

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
    report = {
        "template": describe_template(tokenizer, config.model.template),
        "sources": [{"file": source.name, "rows": len(source.rows), "train_rows": count}
                    for source, count in zip(sources, counts)],
        "train_conversations": len(train), "validation_conversations": len(validation),
        "train_tokens": sum(len(example) for example in train), "supervised_tokens": supervised,
        "truncated": tallies["truncated"], "dropped_too_long": tallies["dropped_too_long"],
        "max_seq_length": config.train.max_seq_length,
    }
    return TrainingData(train, validation, report)
