"""The text of every row of one batched `generate()` call as it grows, and a way to stop rows one by one.

    streamer = BatchStreamer(tokenizer, limits=[256, 64], stop_ids={2}, listener=show, cancelled=gone)
    model.generate(**batch, streamer=streamer, stopping_criteria=StoppingCriteriaList([streamer]), …)

transformers' own TextIteratorStreamer refuses batches, yet two replies side by side on one base and the
API server's mixed-adapter batches are one generate call with several rows. generate() hands a streamer
each step's new token of every row; here each row feeds its tokens to its own TextStreamer (the library's
rules for when decoded text is safe to show: no half characters, no half words) and the listener hears
each row's reply as it grows. The same object is a stopping criterion, so a row ends on its own
max_new_tokens or when its reader has gone, while the other rows carry on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Literal

import torch
from transformers import TextStreamer
from transformers.generation.streamers import BaseStreamer

FinishReason = Literal["stop", "length", "cancelled"]


@dataclass(frozen=True)
class Reply:
    """One row's reply so far, with the figures the Chat tab and the API show."""

    text: str = ""                       # the whole reply so far
    delta: str = ""                      # what the latest update added
    tokens: int = 0                      # tokens generated so far (the end-of-turn token included)
    prompt_tokens: int = 0
    first_token_s: float | None = None   # from the start of the request to its first token
    decode_s: float = 0.0                # from the first token to the latest one
    finish: FinishReason | None = None   # None while it is still being written

    @property
    def tokens_per_s(self) -> float | None:
        """Decode speed: the tokens after the first, per second since the first."""
        return (self.tokens - 1) / self.decode_s if self.tokens > 1 and self.decode_s > 0 else None


Listener = Callable[[int, Reply], None]   # (row, its reply after this update)


def nobody(row: int, reply: Reply) -> None:
    """The listener of a batch whose replies are only wanted at the end."""
    return None


def never(row: int) -> bool:
    """The cancel check of a batch whose rows are never cancelled."""
    return False


class _RowText(TextStreamer):
    """One row's text, released by TextStreamer's rules to `emit`."""

    def __init__(self, tokenizer: Any, emit: Callable[[str], None]) -> None:
        super().__init__(tokenizer, skip_prompt=False, skip_special_tokens=True)
        self._emit = emit

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        if text:
            self._emit(text)


class BatchStreamer(BaseStreamer):
    def __init__(self, tokenizer: Any, limits: Sequence[int], stop_ids: Collection[int], prompt_tokens: Sequence[int],
                 listener: Listener = nobody, cancelled: Callable[[int], bool] = never,
                 started: float | None = None) -> None:
        self.limits = list(limits)
        self.stop_ids = set(stop_ids)
        self.listener = listener
        self.cancelled = cancelled
        self.started = time.perf_counter() if started is None else started
        self.replies = [Reply(prompt_tokens=count) for count in prompt_tokens]
        self._first_at: list[float | None] = [None] * len(self.limits)
        self._texts = [_RowText(tokenizer, partial(self._add_text, row)) for row in range(len(self.limits))]
        self._prompt_seen = False

    # BaseStreamer: generate() calls put() with the prompt once, then with each step's new tokens.

    def put(self, value: torch.Tensor) -> None:
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        now = time.perf_counter()
        for row, token in enumerate(value.reshape(-1).tolist()):
            if self.replies[row].finish is not None:
                continue   # generate() pads rows that have ended
            first = self._first_at[row] = self._first_at[row] or now
            self.replies[row] = replace(self.replies[row], tokens=self.replies[row].tokens + 1, delta="",
                                        first_token_s=first - self.started, decode_s=now - first)
            if token in self.stop_ids:
                self._finish(row, "stop")
                continue
            self._texts[row].put(torch.tensor([token]))
            if self.replies[row].tokens >= self.limits[row]:
                self._finish(row, "length")

    def end(self) -> None:
        for row, reply in enumerate(self.replies):
            if reply.finish is None:   # generate() stopped at the batch's longest limit
                self._finish(row, "length")

    # StoppingCriteria: which rows are done (their own end of turn, their own limit, or nobody listens).

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor | None = None, **kwargs: object) -> torch.Tensor:
        for row, reply in enumerate(self.replies):
            if reply.finish is None and self.cancelled(row):
                self._finish(row, "cancelled")
        return torch.tensor([reply.finish is not None for reply in self.replies], dtype=torch.bool,
                            device=input_ids.device)

    def _add_text(self, row: int, text: str) -> None:
        reply = self.replies[row]
        self.replies[row] = replace(reply, text=reply.text + text, delta=text)
        self.listener(row, self.replies[row])

    def _finish(self, row: int, reason: FinishReason) -> None:
        self._texts[row].end()   # the text held back waiting for more
        self.replies[row] = replace(self.replies[row], delta="", finish=reason)
        self.listener(row, self.replies[row])
