"""How an export is checked against what it was made from: the same conversations through both models,
compared token by token.

Conversations come from the run's validation split (else its first training rows), tokenised with the
chat template it trained with, so the check looks at the text the model will really see.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from core.errors import DataError
from core.export.source import RunSource
from core.models.templates import IGNORE_INDEX, tokenize_conversation
from core.training import trainset
from core.workspace import Workspace

FALLBACK_CONVERSATIONS = [
    [{"role": "user", "content": question}, {"role": "assistant", "content": answer}] for question, answer in (
        ("What are your opening hours?", "We are open from eight in the morning to six in the evening, Monday to Friday."),
        ("Can you explain what a fever is?", "A fever is a body temperature above the normal range, often a sign of infection."),
        ("请问周末营业吗？", "周六上午营业，周日休息。"),
        ("How do I reset my password?", "Open the settings page, choose 'Security', then follow the reset link we e-mail you."),
    )]


@dataclass(frozen=True)
class Samples:
    token_ids: list[list[int]]
    labels: list[list[int]]   # reply tokens (what perplexity scores); IGNORE_INDEX elsewhere
    origin: str               # in words: "12 conversations of the validation split"


def samples(workspace: Workspace, source: RunSource, tokenizer: Any, limit: int, max_tokens: int) -> Samples:
    """Up to `limit` conversations of the run's validation split (its training rows when it held none out;
    a few built-in ones when its data is gone), each cut to `max_tokens`."""
    config = source.config
    conversations: Sequence[list[dict[str, str]]]
    try:   # the rows training held out, read and split as training did; only those get tokenised
        held = trainset.hold_out(config, workspace)
        rows, where = ((held.validation, "the validation split") if held.validation
                       else ([row for part in held.sources for row in part.rows], "training rows"))
        conversations = [messages for _, messages in rows[:limit]]
    except DataError:
        conversations = FALLBACK_CONVERSATIONS
        where = "built-in conversations (the run's data is no longer in the workspace)"
    chosen = [tokenize_conversation(tokenizer, messages, config.model.template, config.data.system_prompt)
              for messages in conversations[:limit]]
    return Samples([example.input_ids[:max_tokens] for example in chosen],
                   [example.labels[:max_tokens] for example in chosen],
                   f"{len(chosen)} conversation(s) of {where}")


@torch.inference_mode()
def logits(model: Any, token_ids: Sequence[list[int]]) -> list[torch.Tensor]:
    """The model's float32 logits on each sequence, one at a time (no padding to reason about), on the CPU."""
    device = next(model.parameters()).device
    return [model(input_ids=torch.tensor([ids], device=device)).logits[0].float().cpu() for ids in token_ids]


@dataclass(frozen=True)
class Agreement:
    max_abs_diff: float        # the largest difference of any logit at any position
    top_token_agreement: float # share of positions where both pick the same next token
    positions: int

    def to_json(self) -> dict[str, float | int]:
        return {"max_abs_logit_diff": self.max_abs_diff, "top_token_agreement": self.top_token_agreement,
                "positions": self.positions}


def compare(expected: Sequence[torch.Tensor], got: Sequence[torch.Tensor]) -> Agreement:
    diff, same, positions = 0.0, 0, 0
    for a, b in zip(expected, got):
        diff = max(diff, float((a - b).abs().max()))
        same += int((a.argmax(-1) == b.argmax(-1)).sum())
        positions += a.shape[0]
    return Agreement(diff, same / positions if positions else 0.0, positions)


@torch.inference_mode()
def perplexity(model: Any, data: Samples) -> float:
    """exp(mean negative log-likelihood of the reply tokens): lower means the replies were expected."""
    total, count = 0.0, 0
    for scores, labels in zip(logits(model, data.token_ids), data.labels):
        targets = torch.tensor(labels[1:])
        counted = targets != IGNORE_INDEX
        if counted.any():
            total += float(torch.nn.functional.cross_entropy(scores[:-1][counted], targets[counted], reduction="sum"))
            count += int(counted.sum())
    return math.exp(total / count) if count else float("nan")
