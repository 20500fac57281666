"""Batches and the tensors of one forward pass: padding-free packing, or classic padding to compare.

Packing puts the conversations of a batch end to end in one row and restarts `position_ids` at 0 for
each of them. Given no attention mask and no cache, transformers (sdpa attention) reads the restarts
and builds a block-diagonal causal mask, so no conversation attends to another and the loss equals
the per-conversation losses, without spending a single FLOP on padding.

That mask is dense, though: attention then costs O(row length²) and the cheap causal kernel cannot
be used. So where it is exact, `use_packed_attention` swaps in `packed_attention`, which runs
torch's causal sdpa once per conversation (what flash-attention's varlen kernels do on GPUs), and a
whole batch becomes one row. Where it is not (sliding windows, logit soft-capping), a batch is packed
into several rows of at most `row_tokens` (first-fit decreasing), each its own forward pass, with the
gradients adding up. Next-token targets are shifted per conversation before packing, so the last
token of one conversation is never trained to predict the first token of the next.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from core.models.templates import IGNORE_INDEX
from core.training.trainset import Example

if TYPE_CHECKING:
    from transformers import PreTrainedModel

_GROUP_SPAN = 50  # length grouping sorts within windows of this many batches: similar lengths, random order
PACKED_ATTENTION = "studio_packed_sdpa"
ONE_ROW = 2 ** 62  # row_tokens that puts a whole batch in one row


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

    def to(self, device: torch.device | str) -> ForwardBatch:
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
    ids: list[int] = []
    positions: list[int] = []
    targets: list[int] = []
    weights: list[float] = []
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


def packed_attention(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                     attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                     position_ids: torch.Tensor | None = None, **kwargs) -> tuple[torch.Tensor, None]:
    """A transformers attention function for one packed row ([1, heads, tokens, head_dim]): causal
    attention inside each conversation, found where `position_ids` restart at 0."""
    if position_ids is None or query.shape[0] != 1:
        # Without position ids the conversations of a row cannot be told apart: never guess.
        raise ValueError("Packed attention needs one packed row with its position ids; this model does not pass "
                         "them to its attention. Set train.packing=false for this model.")
    starts = (position_ids[0] == 0).nonzero().flatten().tolist()
    bounds = sorted({0, *starts}) + [query.shape[2]]
    parts = [F.scaled_dot_product_attention(query[:, :, a:b], key[:, :, a:b], value[:, :, a:b], is_causal=True,
                                            dropout_p=dropout, scale=scaling, enable_gqa=True)
             for a, b in zip(bounds, bounds[1:])]
    return torch.cat(parts, dim=2).transpose(1, 2).contiguous(), None


def use_packed_attention(model: PreTrainedModel, max_length: int) -> bool:
    """Switch a transformers model (sdpa attention) to `packed_attention` where that is exact: no
    sliding window shorter than a conversation, no attention-logit soft-capping. Returns whether it did."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    text = model.config.get_text_config()
    window = getattr(text, "sliding_window", None) if getattr(text, "use_sliding_window", True) else None
    if (model.config._attn_implementation != "sdpa" or getattr(text, "attn_logit_softcapping", None)
            or (window and window < max_length)):
        return False
    AttentionInterface.register(PACKED_ATTENTION, packed_attention)
    AttentionMaskInterface.register(PACKED_ATTENTION, lambda *args, **kwargs: None)  # no mask to build
    model.set_attn_implementation(PACKED_ATTENTION)
    return True
