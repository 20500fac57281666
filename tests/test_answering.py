"""Answering with one base and several adapters: batched answers equal one-at-a-time answers, switching
runs never reloads the base, and each run answers the way it was trained."""

from pathlib import Path

import pytest
from test_train import start_run, tiny_config, write_rows

from core.config import GenerationSection
from core.errors import ConfigError
from core.inference import choices
from core.inference.answering import Answerer
from core.workspace import Workspace

GREEDY = GenerationSection(temperature=0, max_new_tokens=12)
QUESTIONS = ["When do you open?", "What should I bring?", "Can I book online?", "When do you close?"]


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


def test_each_run_answers_as_trained_without_reloading_the_base(workspace: Workspace, learnable_model_dir: Path,
                                                                tmp_path: Path):
    pairs = {"clinic": [(q, "At eight in the morning.") for q in QUESTIONS],
             "garage": [(q, "Bring the car on Monday.") for q in QUESTIONS]}
    runs = {}
    for name, rows in pairs.items():
        data = write_rows(tmp_path / f"{name}.jsonl", rows, repeat=4)
        folder, _ = start_run(workspace, tiny_config(learnable_model_dir, data, f"name={name}", "train.max_steps=40",
                                                     "train.learning_rate=0.02", "data.validation_ratio=0"))
        runs[name] = choices.run_choice(workspace, folder.run_id)
    answerer = Answerer(workspace, str(learnable_model_dir))
    question = [asked(QUESTIONS[0])]
    settings = GenerationSection(temperature=0, max_new_tokens=8)
    clinic = answerer.answer(question, runs["clinic"], settings)[0].text
    garage = answerer.answer(question, runs["garage"], settings)[0].text
    base = answerer.answer(question, choices.base_choice(str(learnable_model_dir)), settings)[0].text
    assert clinic.startswith("At") and "morning" in clinic and garage.startswith("Bring")
    assert base != clinic and base != garage
    assert answerer.answer(question, runs["clinic"], settings)[0].text == clinic   # switching back
    assert answerer.base_loads == 1

    listed = {choice.key for choice in choices.available(workspace)}
    assert {runs["clinic"].key, runs["garage"].key, "base:default"} <= listed
    assert choices.resolve(workspace, runs["garage"].key).adapter == runs["garage"].adapter


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
