"""Answering many prompts at once with one base model and any number of LoRA adapters on it: what
evaluation, rating sessions and the API server generate with.

    answerer = Answerer(workspace, "default")                      # the base loads once
    answers = answerer.answer(conversations, choice, batch_size=8)  # choice: core.inference.choices

Each run's adapter is added to the loaded base with peft (`load_adapter`), so answering as another run
costs an adapter switch, not a second model in memory. Prompts are laid out with the chat template and
system prompt the choice was trained with, grouped by length, batched with left padding (a decoder-only
model continues on the right) and answered with the KV cache; temperature 0 means greedy decoding.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch

from core.config import GenerationSection
from core.errors import ConfigError
from core.inference.choices import ModelChoice
from core.models import modeling
from core.models.templates import Message, prompt_text
from core.progress import QUIET, Progress
from core.workspace import Workspace


@dataclass(frozen=True)
class Answer:
    text: str
    new_tokens: int        # tokens generated (end-of-turn included)
    seconds: float         # wall time of the batch it was in, shared by its rows


class Answerer:
    def __init__(self, workspace: Workspace, base: str) -> None:
        self.workspace = workspace
        self.base = base
        self.tokenizer = modeling.load_tokenizer(base, workspace)
        self.tokenizer.padding_side = "left"
        self.model: Any = modeling.load_model(base, workspace)
        self.base_loads = 1   # how many times a base was loaded (tests check switching never reloads)
        self._adapters: dict[str, str] = {}   # choice key -> peft adapter name

    def serves(self, choice: ModelChoice) -> bool:
        """Whether `choice` runs on this base (an adapter trained on it, or the base itself)."""
        return _same_model(choice.base, self.base, self.workspace)

    @contextmanager
    def active(self, choice: ModelChoice) -> Iterator[Any]:
        """The model as `choice`: its adapter switched on, or every adapter off for the base."""
        if not self.serves(choice):
            raise ConfigError(f"{choice.label} runs on '{choice.base}', not on the loaded '{self.base}'.",
                              "Answer with one base model at a time.")
        if choice.adapter is None:
            with self.model.disable_adapter() if self._adapters else nullcontext():
                yield self.model
            return
        self.model = self._with_adapter(choice)
        self.model.set_adapter(self._adapters[choice.key])
        yield self.model

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

    def answer(self, conversations: Sequence[list[Message]], choice: ModelChoice,
               settings: GenerationSection | None = None, batch_size: int = 8,
               progress: Progress = QUIET) -> list[Answer]:
        """The next assistant reply to each conversation, as `choice`, in the order given."""
        settings = settings or choice.generation
        prompts = [prompt_text(self.tokenizer, list(messages), choice.template, choice.system_prompt)
                   for messages in conversations]
        lengths = [len(self.tokenizer(prompt, add_special_tokens=False)["input_ids"]) for prompt in prompts]
        order = sorted(range(len(prompts)), key=lambda index: -lengths[index])   # similar lengths together
        answers: list[Answer | None] = [None] * len(prompts)
        with self.active(choice) as model:
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
        batch = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
        sampling = settings.temperature > 0
        extra = {"temperature": settings.temperature, "top_p": settings.top_p} if sampling else {}
        output = model.generate(**batch, max_new_tokens=settings.max_new_tokens, do_sample=sampling,
                                repetition_penalty=settings.repetition_penalty,
                                pad_token_id=self.tokenizer.pad_token_id, **extra)
        new = output[:, batch["input_ids"].shape[1]:]
        seconds = time.perf_counter() - started
        texts = self.tokenizer.batch_decode(new, skip_special_tokens=True)
        return [Answer(text.strip(), int((row != self.tokenizer.pad_token_id).sum()), seconds)
                for text, row in zip(texts, new)]


def _same_model(a: str, b: str, workspace: Workspace) -> bool:
    return a == b or modeling.resolve(a, workspace).path == modeling.resolve(b, workspace).path
