"""Chat tab: talk to the base model, any run's adapter or a merged/quantised export, streamed; switch model
between messages (adapters on one base switch without a reload); side by side, two models answer the
same message at once. Each reply shows its time to first token and decode speed.

Picking a model fills the reply settings and the system prompt with the ones it was trained with."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from typing import Any

import gradio as gr

from core.config import GenerationSection
from core.inference import choices
from core.inference.streaming import Reply
from core.models import modeling
from core.text import N_
from studio import conversation
from studio.context import StudioContext
from studio.errors import friendly
from studio.i18n import tr

DEFAULT_KEY = f"base:{modeling.DEFAULT_MODEL}"
ENDINGS = {"length": N_(" · stopped at the length limit"), "cancelled": N_(" · stopped")}


def figures(reply: Reply) -> str:
    """The line under a reply: time to first token, decode speed, length, how it ended."""
    if reply.first_token_s is None:
        return tr("Waiting for the first token…")
    speed = tr(" · {speed} tokens/s", speed=f"{reply.tokens_per_s:.1f}") if reply.tokens_per_s else ""
    ending = ENDINGS.get(reply.finish or "")
    return tr("First token after {seconds} s{speed} · {tokens} tokens{ending}", seconds=f"{reply.first_token_s:.2f}",
              speed=speed, tokens=reply.tokens, ending=tr(ending) if ending else "")


def build(ctx: StudioContext, tab: gr.Tab) -> None:
    defaults = GenerationSection()
    listed = [(choice.label, choice.key) for choice in choices.available(ctx.workspace)]
    with gr.Row(equal_height=True):
        model_a = gr.Dropdown(listed, value=DEFAULT_KEY, label="Model", elem_id="chat-model", scale=3,
                              info="The base model, a run's adapter on it, or an export. Switch any time.")
        side_by_side = gr.Checkbox(False, label="Side by side", elem_id="chat-side-by-side", scale=1,
                                   info="A second model answers the same messages.")
        model_b = gr.Dropdown(listed, value=DEFAULT_KEY, label="Second model", elem_id="chat-model-b", scale=3,
                              visible=False)
    with gr.Row():
        history_a = gr.Chatbot(elem_id="chat-history", label="Conversation", height=420, buttons=["copy"],
                               placeholder="Ask the model anything. Replies appear word by word.")
        history_b = gr.Chatbot(elem_id="chat-history-b", label="Second model", height=420, buttons=["copy"],
                               visible=False)
    with gr.Row():
        stats_a = gr.Markdown(elem_id="chat-stats")
        stats_b = gr.Markdown(elem_id="chat-stats-b", visible=False)
    with gr.Row():
        message = gr.Textbox(placeholder="Type a message and press Enter", label="Message", show_label=False,
                             elem_id="chat-input", scale=5, autofocus=True)
        send = gr.Button("Send", variant="primary", elem_id="chat-send", scale=1)
        stop = gr.Button("Stop", variant="stop", elem_id="chat-stop", scale=1)
        clear = gr.Button("New conversation", elem_id="chat-clear", scale=1, min_width=170)
    with gr.Accordion("Reply settings", open=False, elem_id="chat-settings"):
        system = gr.Textbox(label="System prompt (optional)", elem_id="chat-system",
                            info="An instruction the model follows for the whole conversation. A run starts "
                                 "with the one it was trained with.")
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
    settings = [system, temperature, max_new_tokens, top_p, repetition_penalty]

    @friendly
    @ctx.allow("chat", otherwise=lambda: (gr.skip(), gr.skip()))
    def list_models(key_a: str, key_b: str) -> tuple:
        found = [(tr(choice.label), choice.key) for choice in choices.available(ctx.workspace)]
        keys = {key for _, key in found}
        return tuple(gr.Dropdown(choices=found, value=key if key in keys else DEFAULT_KEY) for key in (key_a, key_b))

    @friendly
    @ctx.allow("chat")
    def model_defaults(key: str) -> tuple:
        choice = choices.resolve(ctx.workspace, key)
        generation = choice.generation
        return (choice.system_prompt, generation.temperature, generation.max_new_tokens, generation.top_p,
                generation.repetition_penalty, gr.Chatbot(label=tr(choice.label)))

    @ctx.allow("chat")
    def show_second(on: bool) -> tuple:
        return gr.Dropdown(visible=on), gr.Chatbot(visible=on), gr.Markdown(visible=on)

    @friendly
    @ctx.allow("chat")
    def second_label(key: str) -> Any:
        return gr.Chatbot(label=tr(choices.resolve(ctx.workspace, key).label))

    @friendly
    @ctx.allow("chat")
    def reply(text: str, turns_a: list[dict], turns_b: list[dict], key_a: str, key_b: str, both: bool,
              system_prompt: str, temp: float, limit: float, nucleus: float, penalty: float) -> Iterator[tuple]:
        text, system_prompt = (text or "").strip(), (system_prompt or "").strip()
        if not text:
            yield ("", *(gr.skip(),) * 4)
            return
        count = 2 if both else 1
        settings = GenerationSection(temperature=temp, max_new_tokens=int(limit), top_p=nucleus,
                                     repetition_penalty=penalty)
        missing = (gr.skip(),) * (2 - count)
        with closing(conversation.answer(ctx.chat, text, (key_a, key_b)[:count], (turns_a, turns_b)[:count],
                                         system_prompt, settings)) as answering:
            for conversations, replies in answering:
                yield ("", *conversations, *missing, *(figures(answer) for answer in replies), *missing)

    @ctx.allow("chat")
    def stop_reply() -> None:
        """The stop itself is the cancel: Gradio closes the reply's generator, which stops generating."""

    tab.select(list_models, [model_a, model_b], [model_a, model_b], api_name="chat_models", show_progress="hidden")
    model_a.change(model_defaults, model_a, [*settings, history_a], api_name="chat_defaults", show_progress="hidden")
    model_b.change(second_label, model_b, history_b, api_name="chat_second_label", show_progress="hidden")
    side_by_side.change(show_second, side_by_side, [model_b, history_b, stats_b], api_name="chat_side_by_side",
                        show_progress="hidden")
    sent = gr.on([send.click, message.submit], reply,
                 [message, history_a, history_b, model_a, model_b, side_by_side, *settings],
                 [message, history_a, history_b, stats_a, stats_b], api_name="chat", concurrency_limit=1,
                 concurrency_id="chat")
    stop.click(stop_reply, None, None, cancels=[sent], api_name="chat_stop")
    clear.click(lambda: ([], [], "", ""), None, [history_a, history_b, stats_a, stats_b], api_name="chat_clear",
                queue=False)
