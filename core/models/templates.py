"""Chat templates and loss masks: turn one conversation into token ids and the labels that train it.

    tokenize_conversation(tokenizer, messages, template="auto", system_prompt="")
        -> TokenizedConversation(input_ids, labels, offsets, text)

How the labels are found, and why this way:
1. The conversation is rendered to text once with a chat template: the tokenizer's own when it has
   one and `template="auto"`, otherwise the chosen built-in one (ChatML, Llama-2 `[INST]`, DeepSeek,
   Alpaca; ChatML when "auto" finds none).
2. For every assistant message the template is rendered twice more: the conversation before it with the
   generation prompt (the text the model sees when it starts answering), and the conversation up to and
   including it. The characters between the two are that reply as the model must write it, ending
   with the template's end-of-turn/EOS text; trailing whitespace after that is not trained.
3. The whole text is tokenised ONCE, and each token whose characters overlap a reply span gets its own
   id as label; every other token (system, user, template scaffolding) gets -100.

Tokenising prompt and reply separately and concatenating the ids would not reproduce what the model
sees at inference (merges across the boundary differ), so labels would not line up with the inputs.

Labels use the Hugging Face convention: `labels[i]` is the token at position i (not yet shifted), and a
causal LM's loss predicts `labels[i]` from the tokens before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from core.errors import DataError, ModelLoadError
from core.text import N_

IGNORE_INDEX = -100
TemplateName = Literal["auto", "chatml", "llama2", "deepseek", "alpaca"]
Message = dict[str, str]

# Built-in layouts for tokenizers without a chat template (or when the user picks one). Each renders an
# assistant reply as `<reply text><end of turn>` so exactly that is what gets trained.
BUILTIN_TEMPLATES: dict[str, str] = {
    "chatml": (
        "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    ),
    "llama2": (
        "{% set ns = namespace(system='') %}"
        "{% for message in messages %}"
        "{% if message['role'] == 'system' %}{% set ns.system = message['content'] %}"
        "{% elif message['role'] == 'user' %}{{ bos_token or '' }}[INST] "
        "{% if ns.system %}<<SYS>>\n{{ ns.system }}\n<</SYS>>\n\n{% set ns.system = '' %}{% endif %}"
        "{{ message['content'] }} [/INST]"
        "{% elif message['role'] == 'assistant' %} {{ message['content'] }}{{ eos_token or '' }}"
        "{% endif %}{% endfor %}"
    ),
    "deepseek": (
        "{{ bos_token or '' }}{% for message in messages %}"
        "{% if message['role'] == 'user' %}User: {{ message['content'] }}\n\n"
        "{% elif message['role'] == 'assistant' %}Assistant: {{ message['content'] }}{{ eos_token or '' }}"
        "{% elif message['role'] == 'system' %}{{ message['content'] }}\n\n"
        "{% endif %}{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}"
    ),
    "alpaca": (
        "{{ bos_token or '' }}{% set ns = namespace(system='Below is an instruction that describes a task. "
        "Write a response that appropriately completes the request.') %}"
        "{% for message in messages %}{% if message['role'] == 'system' %}{% set ns.system = message['content'] %}"
        "{% endif %}{% endfor %}{{ ns.system }}\n\n"
        "{% for message in messages %}"
        "{% if message['role'] == 'user' %}### Instruction:\n{{ message['content'] }}\n\n"
        "{% elif message['role'] == 'assistant' %}### Response:\n{{ message['content'] }}{{ eos_token or '' }}\n\n"
        "{% endif %}{% endfor %}{% if add_generation_prompt %}### Response:\n{% endif %}"
    ),
}


@dataclass(frozen=True)
class TokenizedConversation:
    """One conversation as the model trains on it.

    input_ids: every token of the rendered text, tokenised once.
    labels:    the token id where the model is trained to produce it (assistant replies and their
               end-of-turn), IGNORE_INDEX (-100) everywhere else; same length as input_ids.
    offsets:   (start, end) characters of each token in `text`.
    text:      the conversation exactly as rendered by the template.
    """

    input_ids: list[int]
    labels: list[int]
    offsets: list[tuple[int, int]]
    text: str

    @property
    def supervised_count(self) -> int:
        return sum(label != IGNORE_INDEX for label in self.labels)

    def truncated(self, max_tokens: int) -> TokenizedConversation:
        """The first `max_tokens` tokens (the text is kept whole for reference)."""
        return TokenizedConversation(self.input_ids[:max_tokens], self.labels[:max_tokens],
                                     self.offsets[:max_tokens], self.text)


def template_source(tokenizer: Any, template: TemplateName = "auto") -> str:
    """The Jinja source used for `template`: the tokenizer's own for "auto" when it has one."""
    if template == "auto":
        own = getattr(tokenizer, "chat_template", None)
        return own if isinstance(own, str) and own else BUILTIN_TEMPLATES["chatml"]
    if template not in BUILTIN_TEMPLATES:
        raise DataError(f"Unknown chat template '{template}'.", f"Choose auto or one of: {', '.join(BUILTIN_TEMPLATES)}.")
    return BUILTIN_TEMPLATES[template]


def describe_template(tokenizer: Any, template: TemplateName = "auto") -> str:
    """In words, which layout `template` means for this tokenizer (for logs and the UI)."""
    if template == "auto":
        if getattr(tokenizer, "chat_template", None):
            return N_("the model's own chat template")
        return N_("ChatML (the model has no chat template)")
    return N_(f"the built-in {template} template")


def with_system_prompt(messages: list[Message], system_prompt: str) -> list[Message]:
    """Put `system_prompt` in front of a conversation that has no system message of its own.

    A sample's own system message is more specific than the run-wide one, so it is kept as it is.
    """
    if not system_prompt.strip() or (messages and messages[0].get("role") == "system"):
        return list(messages)
    return [{"role": "system", "content": system_prompt}, *messages]


def _render(tokenizer: Any, messages: list[Message], source: str, add_generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(messages, chat_template=source, tokenize=False,
                                         add_generation_prompt=add_generation_prompt)


def _reply_spans(tokenizer: Any, messages: list[Message], source: str, text: str) -> list[tuple[int, int]]:
    """(start, end) characters of each assistant reply, end-of-turn included, in the rendered `text`."""
    spans: list[tuple[int, int]] = []
    cursor = 0
    for index, message in enumerate(messages):
        if message.get("role") != "assistant":
            continue
        before = _render(tokenizer, messages[:index], source, add_generation_prompt=True)
        through = _render(tokenizer, messages[:index + 1], source, add_generation_prompt=False)
        if through.startswith(before) and text.startswith(through):
            start, end = len(before), len(through)
        else:
            # Templates that rewrite earlier turns (e.g. dropping reasoning) are not prefix-stable:
            # find the reply text itself, then take the end-of-turn token that follows it.
            start = text.find(message["content"], cursor)
            if start < 0:
                raise DataError("The chat template does not reproduce an assistant reply verbatim, so its "
                                "tokens cannot be found.", "Choose a built-in template (model.template).")
            end = start + len(message["content"])
            eos = getattr(tokenizer, "eos_token", None) or ""
            if eos and text[end:].lstrip(" ").startswith(eos):
                end = text.index(eos, end) + len(eos)
        end = start + len(text[start:end].rstrip())
        spans.append((start, end))
        cursor = end
    return spans


def prompt_text(tokenizer: Any, messages: list[Message], template: TemplateName = "auto", system_prompt: str = "") -> str:
    """The text a model sees when it starts its next reply to `messages` (the generation prompt included),
    laid out exactly as training laid out its conversations."""
    return _render(tokenizer, with_system_prompt(messages, system_prompt), template_source(tokenizer, template),
                   add_generation_prompt=True)


def tokenize_conversation(tokenizer: Any, messages: list[Message], template: TemplateName = "auto",
                          system_prompt: str = "") -> TokenizedConversation:
    """Render `messages` with the chat template and label the assistant replies (see the module doc).

    `system_prompt` is put in front when the conversation has no system message. A conversation
    without an assistant message yields no supervised token (`supervised_count == 0`); callers that
    train refuse such samples (core.training.trainset names the row and the cause).
    """
    if not getattr(tokenizer, "is_fast", False):
        raise ModelLoadError("Training needs a fast (Rust) tokenizer to line labels up with the text, and this "
                             "model only has a slow one.", "Convert the tokenizer with transformers, or pick another model.")
    messages = with_system_prompt(messages, system_prompt)
    source = template_source(tokenizer, template)
    text = _render(tokenizer, messages, source, add_generation_prompt=False)
    spans = _reply_spans(tokenizer, messages, source, text)
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    input_ids: list[int] = list(encoded["input_ids"])
    offsets = [(int(start), int(end)) for start, end in encoded["offset_mapping"]]
    labels = [
        token if any(start < span_end and end > span_start for span_start, span_end in spans) else IGNORE_INDEX
        for token, (start, end) in zip(input_ids, offsets)
    ]
    return TokenizedConversation(input_ids, labels, offsets, text)
