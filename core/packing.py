"""Batches and the tensors of one forward pass: padding-free packing, or classic padding to compare.

Packing puts the conversations of a batch end to end in one row and restarts `position_ids` at 0 for
each of them. Given no attention mask and no cache, transformers (sdpa attention) reads the restarts
and builds a block-diagonal causal mask, so no conversation attends to another and the loss equals
the per-conversation losses, without spending a single FLOP on padding.

A dense attention mask still costs O(row length²), so a batch is packed into several rows (first-fit
decreasing), each at most `row_tokens` long; each row is its own forward pass and the gradients add
up. Next-token targets are shifted per conversation before packing, so the last token of one
conversation is never trained to predict the first token of the next.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Sequence

import torch

from core.templates import IGNORE_INDEX
from core.trainset import Example

_GROUP_SPAN = 50  # length grouping sorts within windows of this many batches: similar lengths, random order


@dataclass(frozen=True)
class ForwardBatch:
    """The tensors of one forward pass, shape [rows, tokens]; `targets` are already shifted."""

    input_ids: torch.Tensor
    position_ids: torch.Tensor
    attention_mask: torch.Tensor | None  # None when packed: the position restarts separate conversations
    targets: torch.Tensor                # id to predict at each position, IGNORE_INDEX where no loss
    weights: torch.Tensor                # loss weight of each target
    real_tokens: int                     # tokens that are not padding

    @property
    def supervised(self) -> torch.Tensor:
        return self.targets != IGNORE_INDEX

    def to(self, device: torch.device | str) -> "ForwardBatch":
        mask = None if self.attention_mask is None else self.attention_mask.to(device)
        return ForwardBatch(self.input_ids.to(device), self.position_ids.to(device), mask,
                            self.targets.to(device), self.weights.to(device), self.real_tokens)


def batch_order(lengths: Sequence[int], batch_size: int, seed: int, group_by_length: bool) -> list[list[int]]:
    """Indices of the examples, cut into batches, in a seeded random order.

    With `group_by_length`, examples are sorted by length inside windows of _GROUP_SPAN batches, so a
    batch holds similar lengths (less padding, even rows) while the batch order stays random.
    """
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    if group_by_length:
        span = batch_size * _GROUP_SPAN
        order = [i for start in range(0, len(order), span)
                 for i in sorted(order[start:start + span], key=lambda index: -lengths[index])]
    batches = [order[start:start + batch_size] for start in range(0, len(order), batch_size)]
    rng.shuffle(batches)
    return batches


def _shifted(example: Example) -> tuple[list[int], list[float]]:
    """Targets for positions 0..n-1: the label of the next token; the last position predicts nothing."""
    return example.labels[1:] + [IGNORE_INDEX], example.weights[1:] + [0.0]


def pack_rows(examples: Sequence[Example], row_tokens: int) -> list[list[Example]]:
    """First-fit decreasing: conversations into as few rows of at most `row_tokens` as possible
    (a conversation longer than that gets a row of its own)."""
    rows: list[list[Example]] = []
    room: list[int] = []
    for example in sorted(examples, key=len, reverse=True):
        slot = next((i for i, free in enumerate(room) if free >= len(example)), None)
        if slot is None:
            rows.append([example])
            room.append(row_tokens - len(example))
        else:
            rows[slot].append(example)
            room[slot] -= len(example)
    return rows


def packed(examples: Sequence[Example]) -> ForwardBatch:
    """One row: the conversations end to end, positions restarting at 0 for each, no attention mask."""
    ids, positions, targets, weights = [], [], [], []
    for example in examples:
        shifted_targets, shifted_weights = _shifted(example)
        ids += example.input_ids
        positions += range(len(example))
        targets += shifted_targets
        weights += shifted_weights
    return ForwardBatch(torch.tensor([ids]), torch.tensor([positions]), None, torch.tensor([targets]),
                        torch.tensor([weights], dtype=torch.float32), len(ids))


def padded(examples: Sequence[Example], pad_id: int) -> ForwardBatch:
    """Classic batching: one row per conversation, right-padded to the longest, with an attention mask."""
    width = max(len(example) for example in examples)
    ids = torch.full((len(examples), width), pad_id)
    targets = torch.full((len(examples), width), IGNORE_INDEX)
    weights = torch.zeros((len(examples), width))
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, example in enumerate(examples):
        n = len(example)
        shifted_targets, shifted_weights = _shifted(example)
        ids[row, :n] = torch.tensor(example.input_ids)
        targets[row, :n] = torch.tensor(shifted_targets)
        weights[row, :n] = torch.tensor(shifted_weights)
        mask[row, :n] = 1
    positions = torch.arange(width).expand(len(examples), width)
    return ForwardBatch(ids, positions, mask, targets, weights, int(mask.sum()))


def forward_batches(examples: Sequence[Example], packing: bool, row_tokens: int, pad_id: int) -> list[ForwardBatch]:
    """The forward passes for one batch of conversations."""
    if packing:
        return [packed(row) for row in pack_rows(examples, row_tokens)]
    return [padded(examples, pad_id)]
