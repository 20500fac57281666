"""How likely a model finds the reference answers: the summed negative log-likelihood of each reference
reply's tokens given its prompt, laid out with the chat template the choice was trained with. A set's
perplexity is exp(total NLL / total tokens); lower means the model expected those answers.

It runs on the model an Answerer already holds, with the choice's adapter switched on (Answerer.active),
so scoring needs no second copy of the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from core.evaluation.heldout import Item
from core.inference.answering import Answerer
from core.inference.choices import ModelChoice
from core.models.templates import IGNORE_INDEX, prompt_text, tokenize_conversation
from core.progress import QUIET, Progress
from core.text import N_


def _reply_labels(tokenizer: Any, item: Item, choice: ModelChoice, max_length: int) -> tuple[list[int], list[int]]:
    """Token ids of the whole conversation and labels on the reference reply only (the last answer and
    its end of turn); long conversations keep their last `max_length` tokens."""
    messages = [*item.context, {"role": "assistant", "content": item.reference}]
    tokenized = tokenize_conversation(tokenizer, messages, choice.template, choice.system_prompt)
    reply_starts = len(prompt_text(tokenizer, item.context, choice.template, choice.system_prompt))
    labels = [label if start >= reply_starts else IGNORE_INDEX
              for label, (start, _) in zip(tokenized.labels, tokenized.offsets)]
    return tokenized.input_ids[-max_length:], labels[-max_length:]


@torch.inference_mode()
def reference_nll(answerer: Answerer, items: Sequence[Item], choice: ModelChoice, batch_size: int = 8,
                  max_length: int = 2048, progress: Progress = QUIET) -> list[tuple[float, int]]:
    """(summed NLL in nats, reply tokens) of each item's reference answer under `choice`, in order."""
    tokenizer = answerer.tokenizer
    encoded = [_reply_labels(tokenizer, item, choice, max_length) for item in items]
    order = sorted(range(len(encoded)), key=lambda index: -len(encoded[index][0]))
    results: list[tuple[float, int]] = [(float("nan"), 0)] * len(encoded)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    with answerer.active(choice) as model:
        for start in range(0, len(order), batch_size):
            progress.check()
            rows = order[start:start + batch_size]
            width = max(len(encoded[i][0]) for i in rows)
            ids = torch.full((len(rows), width), pad, dtype=torch.long)
            labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for row, index in enumerate(rows):
                token_ids, target_ids = encoded[index]
                ids[row, :len(token_ids)] = torch.tensor(token_ids)
                labels[row, :len(target_ids)] = torch.tensor(target_ids)
                mask[row, :len(token_ids)] = 1
            device = model.device
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
            shifted, targets = logits[:, :-1], labels[:, 1:].to(device)
            losses = torch.nn.functional.cross_entropy(shifted.reshape(-1, shifted.shape[-1]), targets.reshape(-1),
                                                       ignore_index=IGNORE_INDEX, reduction="none").view(targets.shape)
            counted = (targets != IGNORE_INDEX).sum(dim=1)
            for row, index in enumerate(rows):
                scored = int(counted[row])
                results[index] = (float(losses[row].sum()) if scored else float("nan"), scored)
            progress.report(min(start + batch_size, len(order)), len(order), N_(f"{choice.label}: scoring the references"))
    return results
