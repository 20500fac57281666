"""The Demo tab through gradio_client against the real studio holding two finished runs that memorised different
answers: the newest finished run is picked by default; a run's headline gives its training time and loss, its
latest evaluation against the base with 95% intervals, change and verdict, and its human ratings — or, where
there are none, one sentence saying what to do; one message is answered by the run's base and by the tuned
run side by side."""

from gradio_client import Client
from support import MEMORISED, QUESTIONS, evaluate_memorised, rate_blind

from core.evaluation import showcase
from core.inference.chat import ChatEngine, Turn
from core.runs import records
from core.system.device_lock import DeviceLock
from core.workspace import Workspace
from studio.conversation import EMPTY_ANSWER

STUDIO_MEMORISED_RUNS = True
GOOD = {"fluency": "4", "relevance": "3", "safety": "safe"}


def connect(url: str) -> Client:
    return Client(url, analytics_enabled=False, verbose=False)


def text_of(message: dict) -> str:
    content = message["content"]
    return content if isinstance(content, str) else "".join(part.get("text", "") for part in content)


def run_ids(workspace: Workspace) -> dict[str, str]:
    return {status.name: status.run_id for status in records.list_runs(workspace)}


def test_the_newest_finished_run_is_shown_with_its_headline_in_plain_words(studio):
    workspace = Workspace.open(studio.workspace)
    runs = run_ids(workspace)
    client = connect(studio.url)
    listed = client.predict(None, api_name="/demo_runs")
    assert {run_id for _, run_id in listed["choices"]} == set(runs.values())
    assert listed["value"] == records.list_runs(workspace)[0].run_id   # the newest

    headline, plot, evaluation, ratings, _, _ = client.predict(runs["garage"], api_name="/demo_show")
    assert "### garage" in headline and "Training time:** about" in headline and "(80 steps)" in headline
    assert "Best validation loss:** " in headline and "held back from training" in headline
    assert "train loss" in str(plot)   # the loss curve, drawn from the run's metrics
    assert "No automatic evaluation yet" in evaluation and "Evaluate tab" in evaluation
    assert "No one has rated this run's answers yet" in ratings and "Rate tab" in ratings

    # Evaluated against its base, and rated blind: the numbers appear, with their intervals.
    clinic = runs["clinic"]
    eval_id = evaluate_memorised(workspace, clinic, MEMORISED["clinic"])
    pair = showcase.demo_chat(workspace, clinic)
    rate_blind(workspace, [pair.base_key, pair.run_key], "Ana", GOOD)
    headline, _, evaluation, ratings, base, tuned = client.predict(clinic, api_name="/demo_show")
    assert "### clinic" in headline and base["value"] == tuned["value"] == []   # a new run, a new conversation
    assert "/" not in base["label"] and tuned["label"] == "Tuned: clinic (after)"   # no server path in a label
    found = showcase.latest_evaluation(workspace, clinic)
    assert found is not None and found.eval_id == eval_id and found.samples == len(QUESTIONS)
    chrf = next(metric for metric in found.metrics if metric.name == "chrF")
    assert chrf.tuned.value == 100.0 and chrf.verdict == "better"   # the memorised answers, word for word
    assert f"| chrF | {chrf.base.words()} | 100.0" in evaluation and "| better |" in evaluation
    assert f"On {len(QUESTIONS)} held-out prompts" in evaluation and "95% confidence interval" in evaluation
    assert "Fluency" in ratings and "n=2" in ratings and "Demo check" in ratings


def test_one_message_is_answered_by_the_base_and_the_tuned_run_side_by_side(studio):
    workspace = Workspace.open(studio.workspace)
    runs = run_ids(workspace)
    client = connect(studio.url)
    client.predict(None, api_name="/demo_runs")   # as the page does on load
    message, base, tuned = client.predict(QUESTIONS[0], [], [], runs["clinic"], api_name="/demo_chat")
    assert message == "" and text_of(tuned[-1]) == MEMORISED["clinic"]
    # The base answers as it does alone with the run's reply settings (the chat engine, here): only the adapter
    # differs.
    pair = showcase.demo_chat(workspace, runs["clinic"])
    messages = [*([{"role": "system", "content": pair.system_prompt}] if pair.system_prompt else []),
                {"role": "user", "content": QUESTIONS[0]}]
    *_, (alone,) = ChatEngine(workspace, DeviceLock(workspace)).stream([Turn(pair.base_key, messages)], pair.generation)
    assert text_of(base[-1]) == (alone.text.strip() or EMPTY_ANSWER) != MEMORISED["clinic"]   # blank lines: in words

    # The conversation goes on, each model after its own history (the tiny run memorised single questions only,
    # so its second answer is not checked word for word); another run answers as it was trained.
    _, base, tuned = client.predict(QUESTIONS[1], base, tuned, runs["clinic"], api_name="/demo_chat")
    assert [turn["role"] for turn in base] == [turn["role"] for turn in tuned] == ["user", "assistant"] * 2
    assert [text_of(turn) for turn in tuned[:3]] == [QUESTIONS[0], MEMORISED["clinic"], QUESTIONS[1]]
    _, _, tuned = client.predict(QUESTIONS[2], [], [], runs["garage"], api_name="/demo_chat")
    assert text_of(tuned[-1]) == MEMORISED["garage"]
    assert list(client.predict(api_name="/demo_clear")) == [[], []]
