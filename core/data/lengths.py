"""Token lengths of conversations under a model's tokenizer and chat template, counted as training counts them.

Exact counts come from core.models.templates.tokenize_conversation, the function training uses. Tokenising is
the slow part of cleaning (0.4-1 M characters a second on this CPU), so the "too long" step first takes
a bound that needs no tokenising: every token covers at least one byte of the rendered text (byte-level
BPE, SentencePiece with byte fallback, WordPiece), so a conversation whose rendered UTF-8 size, plus a
margin for a SentencePiece word-start marker, is within the limit is within the limit. Only the others
are tokenised. The rendered size is the size of the contents plus the template's own text for that
sequence of roles, measured once per sequence (and per row for a template that changes the contents).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from jinja2 import TemplateError

from core.data.formats import Message, text_of
from core.data.reports import LengthSample
from core.errors import DataError
from core.models import templates
from core.text import N_

DEFAULT_MAX_TOKENS = 2048
DEFAULT_SAMPLE = 2000   # rows measured for the length histograms (all of them in smaller datasets)
_MARGIN = 8


@dataclass(frozen=True)
class LossPreview:
    """A conversation as training sees it: each token's text and whether the loss trains it."""

    tokens: list[tuple[str, bool]]

    @property
    def trained(self) -> int:
        return sum(trained for _, trained in self.tokens)


class TokenCounter:
    def __init__(self, tokenizer: Any, template: templates.TemplateName = "auto", system_prompt: str = "") -> None:
        self.tokenizer = tokenizer
        self.template: templates.TemplateName = template
        self.system_prompt = system_prompt
        self._source = templates.template_source(tokenizer, template)
        self._overheads: dict[tuple[str, ...], int | None | Exception] = {}

    def count(self, messages: list[Message]) -> int:
        """Tokens of the conversation exactly as training sees it (one at a time; over_limit batches)."""
        return len(templates.tokenize_conversation(self.tokenizer, messages, self.template, self.system_prompt).input_ids)

    def preview(self, messages: list[Message]) -> LossPreview:
        """The tokens of the conversation, as tokenize_conversation makes them for training, with their
        text (a character split over several byte tokens is shown once, on the first)."""
        tokenized = templates.tokenize_conversation(self.tokenizer, messages, self.template, self.system_prompt)
        tokens, shown_up_to = [], 0
        for (start, end), label in zip(tokenized.offsets, tokenized.labels):
            tokens.append((tokenized.text[max(start, shown_up_to):end], label != templates.IGNORE_INDEX))
            shown_up_to = max(shown_up_to, end)
        return LossPreview(tokens)

    def _render(self, messages: list[Message]) -> str:
        return self.tokenizer.apply_chat_template(messages, chat_template=self._source, tokenize=False)

    def _overhead(self, roles: tuple[str, ...]) -> int | None:
        """Bytes the template adds around the contents for this sequence of roles; None when that is not a
        fixed amount (the template trims or rewrites contents). Raises what the template raises."""
        if roles not in self._overheads:
            try:
                empty = len(self._render([{"role": role, "content": ""} for role in roles]).encode())
                grown = len(self._render([{"role": role, "content": "ab"} for role in roles]).encode())
                self._overheads[roles] = empty if grown == empty + 2 * len(roles) else None
            except TemplateError as error:
                self._overheads[roles] = error
        found = self._overheads[roles]
        if isinstance(found, Exception):
            raise found
        return found

    def upper_bound(self, messages: list[Message]) -> int:
        """At least the number of tokens `count` gives, without tokenising."""
        messages = templates.with_system_prompt(messages, self.system_prompt)
        overhead = self._overhead(tuple(message["role"] for message in messages))
        if overhead is None:
            return len(self._render(messages).encode()) + _MARGIN
        return overhead + sum(len(message["content"].encode()) for message in messages) + _MARGIN

    def over_limit(self, conversations: Sequence[list[Message]], max_tokens: int) -> tuple[dict[int, int], dict[int, str]]:
        """Which conversations have more than `max_tokens` tokens (index → tokens), and which the chat
        template cannot lay out at all (index → why). Only conversations whose bound is over the limit
        are tokenised: rendered as tokenize_conversation renders them, then tokenised in one batch."""
        broken: dict[int, str] = {}
        suspects: list[int] = []
        rendered: list[str] = []
        for index, messages in enumerate(conversations):
            try:
                if self.upper_bound(messages) > max_tokens:
                    rendered.append(self._render(templates.with_system_prompt(messages, self.system_prompt)))
                    suspects.append(index)
            except (TemplateError, DataError) as error:
                broken[index] = N_(f"the chat template cannot lay it out: {error}")
        counts = self.text_lengths(rendered)
        return {index: tokens for index, tokens in zip(suspects, counts) if tokens > max_tokens}, broken

    def text_lengths(self, texts: list[str]) -> list[int]:
        """Tokens of each plain text (no template), tokenised in one batch."""
        return [len(ids) for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]] if texts else []


def length_sample(counter: TokenCounter, conversations: Sequence[list[Message]], size: int = DEFAULT_SAMPLE,
                  seed: int = 0) -> LengthSample:
    """Prompt and response token lengths of up to `size` conversations picked at random (all when fewer)."""
    total = len(conversations)
    picked = sorted(random.Random(seed).sample(range(total), size)) if total > size else range(total)
    return LengthSample(prompt_tokens=counter.text_lengths([text_of(conversations[i], "user") for i in picked]),
                        response_tokens=counter.text_lengths([text_of(conversations[i], "assistant") for i in picked]),
                        measured=len(picked), rows=total)
