"""Answering many prompts at once with one base model and any number of LoRA adapters on it: what
evaluation, rating sessions, the Chat tab and the API server generate with.

    answerer = Answerer(workspace, "default")                      # the base loads once
    answers = answerer.answer(conversations, choice, batch_size=8)  # choice: core.inference.choices
    replies = answerer.stream([Request(messages, choice_a), Request(messages, choice_b)], listener)

Each run's adapter is added to the loaded base with peft (`load_adapter`), so answering as another run
costs an adapter switch, not a second model in memory. Prompts are laid out with the chat template and
system prompt the choice was trained with, grouped by length, batched with left padding (a decoder-only
model continues on the right) and answered with the KV cache; temperature 0 means greedy decoding.

`stream` answers one batch whose rows may each be a different choice on this base (peft's mixed-adapter
batches, `generate(adapter_names=[…])`: each row equals its adapter alone), reporting every row's text
as it grows (core.inference.streaming) and stopping rows one by one. One generation runs at a time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch

from core.config import GenerationSection
from core.errors import ConfigError
from core.inference.choices import ModelChoice
from core.inference.streaming import BatchStreamer, Listener, Reply, never, nobody
from core.models import modeling
from core.models.templates import Message, prompt_text
from core.progress import QUIET, Progress
from core.workspace import Workspace

BASE_ROW = "__base__"   # peft's name for "no adapter" in a mixed-adapter batch


@dataclass(frozen=True)
class Answer:
    text: str
    new_tokens: int        # tokens generated (end-of-turn included)
    seconds: float         # wall time of the batch it was in, shared by its rows


@dataclass(frozen=True)
class Request:
    """One row of a streamed batch: a conversation to answer as `choice`. Rows of one batch share the
    sampling settings (temperature, top-p, repetition penalty); each keeps its own max_new_tokens."""

    messages: list[Message]
    choice: ModelChoice
    settings: GenerationSection = field(default_factory=GenerationSection)


def sampling_key(settings: GenerationSection) -> tuple[float, float, float]:
    """What rows must share to be generated together (everything but the reply length)."""
    return settings.temperature, settings.top_p, settings.repetition_penalty


class Answerer:
    def __init__(self, workspace: Workspace, base: str) -> None:
        self.workspace = workspace
        self.base = base
        self.tokenizer = modeling.load_tokenizer(base, workspace)
        self.tokenizer.padding_side = "left"
        self.model: Any = modeling.load_model(base, workspace)
        self.base_loads = 1   # how many times a base was loaded (tests check switching never reloads)
        self._adapters: dict[str, str] = {}   # choice key -> peft adapter name
        self._mixable: dict[str, bool] = {}   # choice key -> whether it can share a batch (not DoRA)
        self._generating = threading.Lock()   # adapter switches and generation, one caller at a time

    def serves(self, choice: ModelChoice) -> bool:
        """Whether `choice` runs on this base (an adapter trained on it, or the base itself)."""
        return _same_model(choice.base, self.base, self.workspace)

    def mixes(self, choice: ModelChoice) -> bool:
        """Whether `choice` can share a batch with other adapters (peft cannot mix DoRA adapters)."""
        if choice.adapter is None:
            return True
        if choice.key not in self._mixable:
            from peft import PeftConfig

            self._mixable[choice.key] = not getattr(PeftConfig.from_pretrained(str(choice.adapter)), "use_dora", False)
        return self._mixable[choice.key]

    @contextmanager
    def active(self, choice: ModelChoice) -> Iterator[Any]:
        """The model as `choice`: its adapter switched on, or every adapter off for the base."""
        self._check(choice)
        if choice.adapter is None:
            with self.model.disable_adapter() if self._adapters else nullcontext():
                yield self.model
            return
        self.model = self._with_adapter(choice)
        self.model.set_adapter(self._adapters[choice.key])
        yield self.model

    def _check(self, choice: ModelChoice) -> None:
        if not self.serves(choice):
            raise ConfigError(f"{choice.label} runs on '{choice.base}', not on the loaded '{self.base}'.",
                              "Answer with one base model at a time.")

    def _with_adapter(self, choice: ModelChoice) -> Any:
        from peft import PeftModel

        if choice.key in self._adapters:
            return self.model
        name = f"adapter{len(self._adapters)}"   # peft names become module names: keep them plain
        if isinstance(self.model, PeftModel):
            self.model.load_adapter(str(choice.adapter), adapter_name=name)
            model = self.model
        else:
            model = PeftModel.from_pretrained(self.model, str(choice.adapter), adapter_name=name)
        model.eval()
        self._adapters[choice.key] = name
        return model

    def _prompt(self, messages: Sequence[Message], choice: ModelChoice) -> str:
        return prompt_text(self.tokenizer, list(messages), choice.template, choice.system_prompt)

    def answer(self, conversations: Sequence[list[Message]], choice: ModelChoice,
               settings: GenerationSection | None = None, batch_size: int = 8,
               progress: Progress = QUIET) -> list[Answer]:
        """The next assistant reply to each conversation, as `choice`, in the order given."""
        settings = settings or choice.generation
        prompts = [self._prompt(messages, choice) for messages in conversations]
        lengths = [len(self.tokenizer(prompt, add_special_tokens=False)["input_ids"]) for prompt in prompts]
        order = sorted(range(len(prompts)), key=lambda index: -lengths[index])   # similar lengths together
        answers: list[Answer | None] = [None] * len(prompts)
        with self._generating, self.active(choice) as model:
            for start in range(0, len(order), batch_size):
                progress.check()
                rows = order[start:start + batch_size]
                for index, answer in zip(rows, self._generate(model, [prompts[i] for i in rows], settings)):
                    answers[index] = answer
                progress.report(min(start + batch_size, len(order)), len(order), f"{choice.label}: answering")
        return [answer for answer in answers if answer is not None]

    @torch.inference_mode()
    def _generate(self, model: Any, prompts: list[str], settings: GenerationSection) -> list[Answer]:
        started = time.perf_counter()
        batch = self._tokenized(prompts, model)
        output = model.generate(**batch, **self._generation_kwargs(settings, settings.max_new_tokens))
        new = output[:, batch["input_ids"].shape[1]:]
        seconds = time.perf_counter() - started
        texts = self.tokenizer.batch_decode(new, skip_special_tokens=True)
        return [Answer(text.strip(), int((row != self.tokenizer.pad_token_id).sum()), seconds)
                for text, row in zip(texts, new)]

    def stream(self, requests: Sequence[Request], listener: Listener = nobody,
               cancelled: Callable[[int], bool] = never) -> list[Reply]:
        """Answer every request in one batched generate call, each as its own choice, calling
        `listener(row, reply)` as each reply grows and ends; `cancelled(row)` true ends that row early.
        Returns the finished replies in the order given."""
        if not requests:
            return []
        sampling = {sampling_key(request.settings) for request in requests}
        if len(sampling) > 1:
            raise ConfigError("Requests answered together must share temperature, top-p and repetition penalty.",
                              "Send them separately.")
        for request in requests:
            self._check(request.choice)
        started = time.perf_counter()
        prompts = [self._prompt(request.messages, request.choice) for request in requests]
        with self._generating, self._as_rows([request.choice for request in requests]) as (model, adapter_names):
            batch = self._tokenized(prompts, model)
            prompt_tokens = batch["attention_mask"].sum(dim=1).tolist()
            limits = [request.settings.max_new_tokens for request in requests]
            streamer = BatchStreamer(self.tokenizer, limits, _stop_ids(model), prompt_tokens, listener, cancelled, started)
            extra = {"adapter_names": adapter_names} if adapter_names else {}
            with torch.inference_mode():
                model.generate(**batch, **self._generation_kwargs(requests[0].settings, max(limits)),
                               streamer=streamer, stopping_criteria=_criteria(streamer), **extra)
        return streamer.replies

    @contextmanager
    def _as_rows(self, row_choices: Sequence[ModelChoice]) -> Iterator[tuple[Any, list[str] | None]]:
        """The model for one batch, with the per-row adapter names when the rows are not all one choice."""
        if len({choice.key for choice in row_choices}) == 1:
            with self.active(row_choices[0]) as model:
                yield model, None
            return
        for choice in row_choices:
            if choice.adapter is not None:
                if not self.mixes(choice):
                    raise ConfigError(f"{choice.label} uses DoRA, which cannot share a batch with other adapters.",
                                      "Answer with it on its own.")
                self.model = self._with_adapter(choice)
        yield self.model, [self._adapters[choice.key] if choice.adapter is not None else BASE_ROW
                           for choice in row_choices]

    def _tokenized(self, prompts: list[str], model: Any) -> Any:
        return self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)

    def _generation_kwargs(self, settings: GenerationSection, max_new_tokens: int) -> dict[str, Any]:
        sampling = settings.temperature > 0
        extra = {"temperature": settings.temperature, "top_p": settings.top_p} if sampling else {}
        return {"max_new_tokens": max_new_tokens, "do_sample": sampling, "repetition_penalty": settings.repetition_penalty,
                "pad_token_id": self.tokenizer.pad_token_id, **extra}


def _criteria(streamer: BatchStreamer) -> Any:
    from transformers import StoppingCriteriaList

    return StoppingCriteriaList([streamer])


def _stop_ids(model: Any) -> set[int]:
    """The tokens that end a reply, as generate() itself reads them."""
    eos = model.generation_config.eos_token_id
    return set() if eos is None else {eos} if isinstance(eos, int) else set(eos)


def _same_model(a: str, b: str, workspace: Workspace) -> bool:
    return a == b or modeling.resolve(a, workspace).path == modeling.resolve(b, workspace).path
