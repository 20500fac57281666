"""Streaming chat with a loaded model: the engine behind the Chat tab and `lora-studio chat`.

One model stays loaded at a time (switching models unloads the previous one); generation holds the
device lock, so chatting while a training run has the device gets a clear "busy" message. When the
reader stops listening (the browser closed the tab, a client disconnected), generation is stopped by a
stopping criterion and its thread has ended before the lock is given back.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import torch

from core.config import GenerationSection
from core.errors import StudioError
from core.models import modeling
from core.system.device_lock import DeviceLock
from core.workspace import Workspace

Message = dict[str, str]  # {"role": "system"|"user"|"assistant", "content": str}


class ChatEngine:
    def __init__(self, workspace: Workspace, lock: DeviceLock) -> None:
        self.workspace = workspace
        self.lock = lock
        self._loaded_name: str | None = None
        self._model: Any = None
        self._tokenizer: Any = None
        self._load_lock = threading.Lock()

    def preload(self, name: str) -> None:
        """Load a model ahead of the first message (the studio does this for the default model)."""
        self._ensure_loaded(name)

    def _ensure_loaded(self, name: str) -> None:
        with self._load_lock:
            if self._loaded_name == name:
                return
            self._model = self._tokenizer = self._loaded_name = None
            self._tokenizer = modeling.load_tokenizer(name, self.workspace)
            self._model = modeling.load_model(name, self.workspace)
            self._loaded_name = name

    def stream(self, model_name: str, messages: list[Message],
               generation: GenerationSection | None = None) -> Iterator[str]:
        """Yield the reply as it grows (each item is the whole reply so far)."""
        from transformers import StoppingCriteriaList, TextIteratorStreamer

        if not messages or messages[-1].get("role") != "user" or not messages[-1].get("content", "").strip():
            raise StudioError("There is no question to answer.", "Type a message first.")
        settings = generation or GenerationSection()
        with self.lock.hold("a chat reply", timeout=0.5):
            self._ensure_loaded(model_name)
            model, tokenizer = self._model, self._tokenizer
            if not getattr(tokenizer, "chat_template", None):
                raise StudioError(f"Model '{model_name}' has no chat template, so it cannot hold a conversation.",
                                  "Choose a chat (instruct) model.")
            inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                                   return_tensors="pt", return_dict=True).to(model.device)
            streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=300)
            cancelled = threading.Event()
            sampling = settings.temperature > 0
            kwargs = dict(**inputs, streamer=streamer, max_new_tokens=settings.max_new_tokens,
                          do_sample=sampling, repetition_penalty=settings.repetition_penalty,
                          pad_token_id=tokenizer.pad_token_id,
                          stopping_criteria=StoppingCriteriaList([_Cancelled(cancelled)]))
            if sampling:
                kwargs.update(temperature=settings.temperature, top_p=settings.top_p)
            failure: list[BaseException] = []

            def generate() -> None:
                try:
                    with torch.inference_mode():
                        model.generate(**kwargs)
                except BaseException as error:  # noqa: BLE001 - re-raised in the caller's thread
                    failure.append(error)
                    streamer.end()

            worker = threading.Thread(target=generate, name="chat-generate", daemon=True)
            worker.start()
            try:
                reply = ""
                for piece in streamer:
                    reply += piece
                    yield reply
            finally:  # also when the reader went away mid-reply (GeneratorExit): stop, then free the device
                cancelled.set()
                worker.join()
            if failure:
                raise StudioError(f"The model failed while answering: {failure[0]}") from failure[0]


class _Cancelled:
    """A stopping criterion: generation ends at the next token once `event` is set."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: object) -> torch.Tensor:
        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)
