from pathlib import Path

import pytest
from tiny import build_tokenizer

from core.models.templates import (
    BUILTIN_TEMPLATES,
    IGNORE_INDEX,
    describe_template,
    template_source,
    tokenize_conversation,
    with_system_prompt,
)

CONVERSATION = [
    {"role": "user", "content": "When do you open?"},
    {"role": "assistant", "content": "At eight. 早上八点开门。"},
    {"role": "user", "content": "And on Saturday?"},
    {"role": "assistant", "content": "From nine to one."},
]
REPLIES = [m["content"] for m in CONVERSATION if m["role"] == "assistant"]


def supervised_runs(tokenizer, tokenized) -> list[str]:
    """The decoded text of each contiguous run of supervised tokens."""
    runs, current = [], []
    for token, label in zip(tokenized.input_ids, tokenized.labels):
        if label != IGNORE_INDEX:
            current.append(token)
        elif current:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    return [tokenizer.decode(run) for run in runs]


@pytest.fixture(scope="module")
def tiny_tokenizer():
    return build_tokenizer()


@pytest.fixture(scope="module")
def default_tokenizer(converted_default_model: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(converted_default_model)


@pytest.mark.parametrize("which", ["tiny_tokenizer", "default_tokenizer"])
def test_supervised_tokens_decode_to_exactly_the_replies(which: str, request: pytest.FixtureRequest):
    tokenizer = request.getfixturevalue(which)
    tokenized = tokenize_conversation(tokenizer, CONVERSATION, system_prompt="You are a clinic's front desk.")
    assert supervised_runs(tokenizer, tokenized) == [reply + tokenizer.eos_token for reply in REPLIES]
    # Labels line up with the inputs: each is the input token at the same position, or masked.
    assert len(tokenized.labels) == len(tokenized.input_ids)
    assert all(label in (token, IGNORE_INDEX) for token, label in zip(tokenized.input_ids, tokenized.labels))
    # The ids are the whole rendered text tokenised once, and the prompt the model sees when it starts
    # answering at inference is a token-exact prefix of them.
    assert tokenized.input_ids == tokenizer(tokenized.text, add_special_tokens=False)["input_ids"]
    prompt = tokenizer.apply_chat_template(with_system_prompt(CONVERSATION[:1], "You are a clinic's front desk."),
                                           tokenize=False, add_generation_prompt=True)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    assert tokenized.input_ids[:len(prompt_ids)] == prompt_ids
    assert all(label == IGNORE_INDEX for label in tokenized.labels[:len(prompt_ids)])


@pytest.mark.parametrize("template, lead", [("chatml", ""), ("llama2", " "), ("deepseek", " "), ("alpaca", "")])
def test_builtin_templates_train_reply_and_end_of_turn(tiny_tokenizer, template: str, lead: str):
    tokenized = tokenize_conversation(tiny_tokenizer, CONVERSATION, template=template, system_prompt="Be brief.")
    # Llama-2 and DeepSeek put a space between the prompt and the reply; it belongs to the reply's first word.
    assert supervised_runs(tiny_tokenizer, tokenized) == [lead + reply + tiny_tokenizer.eos_token for reply in REPLIES]
    assert "Be brief." in tokenized.text and "When do you open?" in tokenized.text


def test_layouts_of_the_builtin_templates(tiny_tokenizer):
    def text(template: str) -> str:
        return tokenize_conversation(tiny_tokenizer, CONVERSATION[:2], template=template, system_prompt="S").text

    eos, bos = tiny_tokenizer.eos_token, tiny_tokenizer.bos_token
    assert text("llama2") == f"{bos}[INST] <<SYS>>\nS\n<</SYS>>\n\nWhen do you open? [/INST] {REPLIES[0]}{eos}"
    assert text("deepseek") == f"{bos}S\n\nUser: When do you open?\n\nAssistant: {REPLIES[0]}{eos}"
    assert text("alpaca") == f"{bos}S\n\n### Instruction:\nWhen do you open?\n\n### Response:\n{REPLIES[0]}{eos}\n\n"


def test_auto_uses_the_model_template_or_falls_back_to_chatml(tiny_tokenizer):
    assert template_source(tiny_tokenizer, "auto") == tiny_tokenizer.chat_template
    assert describe_template(tiny_tokenizer) == "the model's own chat template"
    bare = build_tokenizer()
    bare.chat_template = None
    assert template_source(bare, "auto") == BUILTIN_TEMPLATES["chatml"]
    assert "ChatML" in describe_template(bare)
    tokenized = tokenize_conversation(bare, CONVERSATION)
    assert supervised_runs(bare, tokenized) == [reply + "<|im_end|>" for reply in REPLIES]


def test_system_prompt_is_added_once_and_a_sample_system_message_wins():
    assert with_system_prompt(CONVERSATION, "Domain")[0] == {"role": "system", "content": "Domain"}
    own = [{"role": "system", "content": "Own"}, *CONVERSATION]
    assert with_system_prompt(own, "Domain") == own
    assert with_system_prompt(CONVERSATION, "  ") == CONVERSATION


def test_no_assistant_message_means_nothing_supervised(tiny_tokenizer):
    tokenized = tokenize_conversation(tiny_tokenizer, [{"role": "user", "content": "Hello?"}])
    assert tokenized.supervised_count == 0 and tokenized.input_ids
    empty_reply = tokenize_conversation(tiny_tokenizer, [{"role": "user", "content": "Hi"},
                                                         {"role": "assistant", "content": ""}])
    assert supervised_runs(tiny_tokenizer, empty_reply) == [tiny_tokenizer.eos_token]  # still learns to stop
