"""Chat tab: talk to the base model (later also to adapters and merged exports), streamed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gradio as gr

from core.config import GenerationSection
from core.models import modeling
from studio.context import StudioContext
from studio.errors import friendly


def _text(content: Any) -> str:
    """Gradio 6 hands message content over as a list of parts; the engine wants plain text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content or "")


def build(ctx: StudioContext) -> None:
    defaults = GenerationSection()
    with gr.Row():
        model = gr.Dropdown(modeling.local_models(ctx.workspace), value=modeling.DEFAULT_MODEL, label="Model",
                            elem_id="chat-model", scale=3)
        clear = gr.Button("New conversation", elem_id="chat-clear", scale=1)
    history = gr.Chatbot(elem_id="chat-history", label="Conversation", height=420, buttons=["copy"],
                         placeholder="Ask the model anything. Replies appear word by word.")
    with gr.Row():
        message = gr.Textbox(placeholder="Type a message and press Enter", show_label=False,
                             elem_id="chat-input", scale=5, autofocus=True)
        send = gr.Button("Send", variant="primary", elem_id="chat-send", scale=1)
    with gr.Accordion("Reply settings", open=False):
        system = gr.Textbox(label="System prompt (optional)", elem_id="chat-system",
                            info="An instruction the model follows for the whole conversation.")
        with gr.Row():
            temperature = gr.Slider(0, 2, value=defaults.temperature, step=0.05, label="Temperature",
                                    info=GenerationSection.model_fields["temperature"].description,
                                    elem_id="chat-temperature")
            max_new_tokens = gr.Slider(16, 2048, value=defaults.max_new_tokens, step=16, label="Longest reply (tokens)",
                                       elem_id="chat-max-tokens")
        with gr.Row():
            top_p = gr.Slider(0.05, 1.0, value=defaults.top_p, step=0.05, label="Top-p", elem_id="chat-top-p",
                              info=GenerationSection.model_fields["top_p"].description)
            repetition_penalty = gr.Slider(1.0, 2.0, value=defaults.repetition_penalty, step=0.05,
                                           label="Repetition penalty", elem_id="chat-repetition-penalty",
                                           info=GenerationSection.model_fields["repetition_penalty"].description)

    @friendly
    @ctx.allow("chat")
    def reply(text: str, turns: list[dict], model_name: str, system_prompt: str, temp: float,
              limit: float, nucleus: float, penalty: float) -> Iterator[tuple[str, list[dict]]]:
        text, system_prompt, turns = (text or "").strip(), (system_prompt or "").strip(), turns or []
        if not text:
            yield "", turns
            return
        turns = [*turns, {"role": "user", "content": text}]
        messages = [{"role": t["role"], "content": _text(t["content"])} for t in turns]
        if system_prompt:
            messages.insert(0, {"role": "system", "content": system_prompt})
        settings = GenerationSection(temperature=temp, max_new_tokens=int(limit), top_p=nucleus,
                                     repetition_penalty=penalty)
        yield "", [*turns, {"role": "assistant", "content": "…"}]
        for partial in ctx.chat.stream(model_name, messages, settings):
            yield "", [*turns, {"role": "assistant", "content": partial}]

    gr.on([send.click, message.submit], reply,
          [message, history, model, system, temperature, max_new_tokens, top_p, repetition_penalty],
          [message, history], api_name="chat", concurrency_limit=1)
    clear.click(lambda: [], None, history, api_name="chat_clear", queue=False)
