"""Answering with one base and several adapters: batched answers equal one-at-a-time answers, switching
runs never reloads the base, and each run answers the way it was trained."""

from pathlib import Path

import pytest
from support import MEMORISED, QUESTIONS, MemorisedRuns
from test_train import tiny_config

from core.config import GenerationSection
from core.errors import ConfigError
from core.inference import choices
from core.inference.answering import Answerer, Request
from core.inference.streaming import Reply
from core.workspace import Workspace

GREEDY = GenerationSection(temperature=0, max_new_tokens=12)


def asked(question: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": question}]


def test_a_batch_answers_as_one_prompt_at_a_time_does(workspace: Workspace, tiny_model_dir: Path):
    answerer = Answerer(workspace, str(tiny_model_dir))
    base = choices.base_choice(str(tiny_model_dir))
    conversations = [asked(question * (1 + i)) for i, question in enumerate(QUESTIONS)]   # different lengths
    batched = answerer.answer(conversations, base, GREEDY, batch_size=4)
    alone = [answerer.answer([conversation], base, GREEDY, batch_size=1)[0] for conversation in conversations]
    assert [a.text for a in batched] == [a.text for a in alone]
    assert all(0 < a.new_tokens <= 12 for a in batched)


def test_each_run_answers_as_trained_without_reloading_the_base(memorised_runs: MemorisedRuns):
    workspace = memorised_runs.workspace
    runs = {name: choices.resolve(workspace, memorised_runs.key(name)) for name in MEMORISED}
    answerer = Answerer(workspace, str(memorised_runs.base))
    question = [asked(QUESTIONS[0])]
    settings = GenerationSection(temperature=0, max_new_tokens=24)
    clinic = answerer.answer(question, runs["clinic"], settings)[0].text
    garage = answerer.answer(question, runs["garage"], settings)[0].text
    base = answerer.answer(question, choices.base_choice(str(memorised_runs.base)), settings)[0].text
    assert clinic == MEMORISED["clinic"] and garage == MEMORISED["garage"]
    assert base != clinic and base != garage
    assert answerer.answer(question, runs["clinic"], settings)[0].text == clinic   # switching back
    assert answerer.base_loads == 1

    listed = {choice.key for choice in choices.available(workspace)}
    assert {runs["clinic"].key, runs["garage"].key, "base:default"} <= listed
    assert choices.resolve(workspace, runs["garage"].key).adapter == runs["garage"].adapter


def test_a_mixed_adapter_batch_streams_each_row_as_its_adapter_alone(memorised_runs: MemorisedRuns):
    workspace = memorised_runs.workspace
    rows = [choices.resolve(workspace, memorised_runs.key("clinic")), choices.base_choice(str(memorised_runs.base)),
            choices.resolve(workspace, memorised_runs.key("garage"))]
    answerer = Answerer(workspace, str(memorised_runs.base))
    limits = [24, 5, 24]
    requests = [Request(asked(question), choice, GenerationSection(temperature=0, max_new_tokens=limit))
                for question, choice, limit in zip(QUESTIONS[:3], rows, limits)]
    heard: dict[int, list[Reply]] = {0: [], 1: [], 2: []}
    together = answerer.stream(requests, lambda row, reply: heard[row].append(reply))
    alone = [answerer.stream([request])[0] for request in requests]

    assert [reply.text for reply in together] == [reply.text for reply in alone]
    assert together[0].text == MEMORISED["clinic"] and together[2].text == MEMORISED["garage"]
    assert [reply.finish for reply in together] == ["stop", "length", "stop"]
    assert together[1].tokens == 5   # a row ends at its own limit while the others go on
    for row, replies in heard.items():
        assert "".join(reply.delta for reply in replies) == together[row].text   # the deltas add up
        assert replies[-1] == together[row] and [reply.finish for reply in replies[:-1]] == [None] * (len(replies) - 1)
    assert all(reply.first_token_s > 0 and reply.prompt_tokens > 0 for reply in together)
    assert together[0].tokens_per_s > 0
    assert answerer.base_loads == 1


def test_a_cancelled_row_stops_while_the_others_finish(memorised_runs: MemorisedRuns):
    workspace = memorised_runs.workspace
    clinic = choices.resolve(workspace, memorised_runs.key("clinic"))
    answerer = Answerer(workspace, str(memorised_runs.base))
    settings = GenerationSection(temperature=0, max_new_tokens=24)
    requests = [Request(asked(QUESTIONS[0]), clinic, settings), Request(asked(QUESTIONS[1]), clinic, settings)]
    replies = answerer.stream(requests, cancelled=lambda row: row == 1)
    assert replies[0].finish == "stop" and replies[0].text == MEMORISED["clinic"]
    assert replies[1].finish == "cancelled" and replies[1].tokens <= 1 and replies[1].text == ""
    with pytest.raises(ConfigError, match="share temperature"):
        answerer.stream([requests[0], Request(asked("hi"), clinic, GenerationSection(temperature=0.7))])


def test_choices_that_cannot_answer_are_refused_in_words(workspace: Workspace, tiny_model_dir: Path, tmp_path: Path):
    with pytest.raises(ConfigError, match="names no model"):
        choices.resolve(workspace, "run:")
    with pytest.raises(ConfigError, match="not a model choice"):
        choices.resolve(workspace, "checkpoint:x")
    with pytest.raises(ConfigError, match="not a complete model"):
        choices.resolve(workspace, "export:missing")
    from core.runs import records

    queued = records.create(workspace, tiny_config(tiny_model_dir, tmp_path / "faq.jsonl", "name=fresh"))
    with pytest.raises(ConfigError, match="has no adapter yet"):
        choices.resolve(workspace, f"run:{queued.run_id}")
    answerer = Answerer(workspace, str(tiny_model_dir))
    with pytest.raises(ConfigError, match="runs on 'default', not on the loaded"):
        answerer.answer([asked("hi")], choices.base_choice("default"))


def test_a_run_whose_config_cannot_be_read_is_left_out_of_the_choices(memorised_runs: MemorisedRuns, tmp_path: Path):
    from core.workspace import Workspace

    workspace = Workspace.open(tmp_path / "ws")
    memorised_runs.copy_into(workspace)
    workspace.run_folder(memorised_runs.run_ids["garage"]).config.write_text("lora: [not, a, mapping\n")
    keys = {choice.key for choice in choices.available(workspace)}
    assert memorised_runs.key("clinic") in keys and memorised_runs.key("garage") not in keys
