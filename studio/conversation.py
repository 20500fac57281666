"""Conversations as Gradio's chat widgets hold them, answered by the chat engine (core.inference.chat): what
the Chat and the Demo tabs share.

    for conversations, replies in answer(ctx.chat, "When do you open?", ["base:default", "run:faq"],
                                         [history_a, history_b], system_prompt, settings):
        ...   # each history with the message and the reply so far; replies: the engine's Reply objects
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import closing
from typing import Any

from core.config import GenerationSection
from core.inference.chat import ChatEngine, Turn
from core.inference.streaming import Reply
from core.text import N_
from studio.i18n import tr

Message = dict[str, Any]
EMPTY_ANSWER = N_("(an empty answer)")


def text_of(content: Any) -> str:
    """Gradio 6 hands message content over as a list of parts; the engine wants plain text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content or "")


def _visible(reply: Reply) -> str:
    """The reply as the chat shows it: "…" until its first words, and said in words when it ended with nothing
    to read (only blank lines, which the chat widget would show as an empty bubble)."""
    if reply.text.strip():
        return reply.text
    return "…" if reply.finish is None else tr(EMPTY_ANSWER)


def answer(engine: ChatEngine, text: str, keys: Sequence[str], histories: Sequence[list[Message] | None],
           system_prompt: str = "", settings: GenerationSection | None = None
           ) -> Iterator[tuple[list[list[Message]], list[Reply]]]:
    """Each model of `keys` answers `text` after its own history (one per key), streamed: yields every
    history with the message and the reply so far (see _visible), and the replies themselves;
    first at once, then each time a reply grows. Close it (contextlib.closing) when its reader may stop
    early, so that the engine stops at once rather than when the generator is collected."""
    asked = [[*(history or []), {"role": "user", "content": text}] for history in histories]
    system = [{"role": "system", "content": system_prompt}] if system_prompt else []
    turns = [Turn(key, system + [{"role": turn["role"], "content": text_of(turn["content"])} for turn in history])
             for key, history in zip(keys, asked)]

    def shown(replies: list[Reply]) -> tuple[list[list[Message]], list[Reply]]:
        return [[*history, {"role": "assistant", "content": _visible(reply)}] for history, reply in zip(asked, replies)], replies

    yield shown([Reply() for _ in turns])
    # Closed at once when the reader goes (Stop): the engine then stops generating and frees the device.
    with closing(engine.stream(turns, settings)) as replying:
        for replies in replying:
            yield shown(replies)
