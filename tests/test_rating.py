"""Rating sessions through the core API, on tiny models: responses generated once by the job workflow,
blind shuffled items, overlap, resume and going back, re-rating as an update, concurrent raters, agreement
against hand-computed figures, results, CSV/JSONL round trips, and the way back into training."""

import csv
import json
import random
import threading
from collections import Counter
from contextlib import closing
from pathlib import Path

import pytest
from tiny import build_tiny_model

from core.data import formats, store
from core.errors import ConfigError, DataError, StudioError
from core.jobs.worker import JOB_KINDS
from core.progress import Progress
from core.rating import agreement, criteria, exchange, feedback, generation, prompts, queue, ratings, results, sessions
from core.rating.intervals import Mean, Share
from core.rating.sessions import SessionSpec
from core.workspace import Workspace

SHORT = 6   # tokens per response: enough to rate, quick on a tiny model
FIRST, SECOND = "base:tiny-a", "base:tiny-b"
GOOD = {"fluency": "4", "relevance": "3", "safety": "safe"}


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """One workspace with two different tiny models and one generated scale session (module scope: the
    generation is the slow part)."""
    workspace = Workspace.open(tmp_path_factory.mktemp("rating") / "ws")
    build_tiny_model(workspace.model_dir("tiny-a"), seed=1)
    build_tiny_model(workspace.model_dir("tiny-b"), seed=2)
    return workspace


def make(workspace: Workspace, name: str, models=(FIRST, SECOND), source="redteam", **fields) -> sessions.Session:
    fields.setdefault("max_new_tokens", SHORT)
    session = sessions.create(workspace, SessionSpec(name, list(models), source, **fields))
    if not session.ready:
        generation.generate(workspace, session.id)
    return sessions.get(workspace, session.id)


@pytest.fixture(scope="module")
def scale_session(shared: Workspace) -> sessions.Session:
    return make(shared, "Red team", max_prompts=10, overlap=2, seed=7)


def test_responses_are_generated_once_by_the_job_and_items_are_blind_and_shuffled(shared: Workspace,
                                                                                   scale_session: sessions.Session):
    assert JOB_KINDS[generation.KIND] == "core.rating.generation"
    session = scale_session
    assert session.ready and session.prompts == 10 and session.items == 20
    folder = shared.rating_folder(session.id)
    definition = json.loads(folder.definition.read_text())
    assert definition["models"] == [FIRST, SECOND] and definition["source"] == "redteam"
    assert definition["criteria"][0]["name"] == "fluency"
    responses = prompts.read_responses(folder)
    assert len(responses) == 20 and all(text.strip() for text in responses.values())
    assert responses[(1, FIRST)] != responses[(1, SECOND)]   # two different models answered

    items = sessions.items(shared, session.id)
    assert sorted((item.prompt, item.models[0]) for item in items) == sorted(
        (number, model) for number in range(1, 11) for model in (FIRST, SECOND))
    firsts = [item.models[0] for item in items]
    assert firsts != [FIRST, SECOND] * 10 and firsts != [FIRST] * 10 + [SECOND] * 10   # numbers say nothing
    assert all(item.category for item in items)   # red-team categories travel with the prompts
    for item in items:
        assert item.responses == [responses[(item.prompt, item.models[0])]]

    # The same seed gives the same session: prompts, items and (seeded sampling) responses.
    again = make(shared, "Red team again", max_prompts=10, overlap=2, seed=7)
    assert prompts.read_responses(shared.rating_folder(again.id)) == responses
    assert [(i.prompt, i.models) for i in sessions.items(shared, again.id)] == [(i.prompt, i.models) for i in items]


def test_a_cancelled_generation_keeps_finished_models_and_resumes_with_the_rest(shared: Workspace):
    session = sessions.create(shared, SessionSpec("Cancelled", [FIRST, SECOND], "redteam", max_prompts=3,
                                                  max_new_tokens=SHORT))
    answered: list[str] = []
    stop_after_first = Progress(report=lambda done, total, message: answered.append(message),
                                stop_requested=lambda: any(SECOND.split(":")[1] in m for m in answered))
    with pytest.raises(StudioError, match="Cancelled"):
        generation.generate(shared, session.id, stop_after_first)
    folder = shared.rating_folder(session.id)
    assert {model for _, model in prompts.read_responses(folder)} == {FIRST}
    with pytest.raises(StudioError, match="not ready"):
        queue.current(shared, session.id, "Ana")

    reports: list[str] = []
    generation.generate(shared, session.id, Progress(report=lambda d, t, m: reports.append(m)))
    assert all(FIRST.split(":")[1] not in message for message in reports)   # only the missing model answered
    assert sessions.get(shared, session.id).ready


def test_overlap_hands_each_item_to_exactly_k_raters_in_their_own_order(shared: Workspace, scale_session):
    session = scale_session
    orders: dict[str, list[int]] = {}
    for rater in ("Ana", "Ben", "Chen"):
        orders[rater] = []
        view = queue.current(shared, session.id, rater)
        while view.item is not None:
            orders[rater].append(view.item.number)
            ratings.submit(shared, session.id, view.item.number, rater, GOOD)
            view = queue.following(shared, session.id, rater, view.item.number)
        assert view.progress.remaining == 0 and view.progress.rated == len(orders[rater])
    per_item = Counter(number for numbers in orders.values() for number in numbers)
    assert set(per_item) == set(range(1, 21)) and set(per_item.values()) == {2}
    # Ben, coming second, was given Ana's items first (so agreement is measurable early), in his own order.
    assert sorted(orders["Ben"]) == sorted(orders["Ana"]) and orders["Ben"] != orders["Ana"]
    assert orders["Chen"] == []
    rows = {row.rater: row for row in queue.raters(shared, session.id)}
    assert rows["Ana"].rated == 20 and rows["Ben"].rated == 20 and "Chen" not in rows


def test_resume_going_back_and_re_rating_update_instead_of_duplicating(shared: Workspace):
    session = make(shared, "Resume", max_prompts=3, seed=1)
    first = queue.current(shared, session.id, "  Dr   Li ")
    assert first.rater == "Dr Li" and first.position == 0 and first.progress.total == 6
    assert set(vars(first.item)) >= {"messages", "responses"}
    ratings.submit(shared, session.id, first.item.number, "Dr Li", {**GOOD, "comment": "ok"})
    second = queue.following(shared, session.id, "Dr Li", first.item.number)
    assert second.position == 1 and second.values == {}

    # A reload: the rater comes back to the item they had not rated yet.
    assert queue.current(shared, session.id, "Dr Li").item.number == second.item.number
    back = queue.preceding(shared, session.id, "Dr Li", second.item.number)
    assert back.item.number == first.item.number and back.values == {**GOOD, "comment": "ok"}
    assert queue.preceding(shared, session.id, "Dr Li", first.item.number).item.number == first.item.number

    ratings.submit(shared, session.id, first.item.number, "Dr Li", {**GOOD, "fluency": "2", "comment": ""})
    mine = [r for r in ratings.read_all(shared, session.id) if r.item == first.item.number]
    assert {r.criterion: r.value for r in mine} == {**GOOD, "fluency": "2"}   # updated; the cleared comment is gone
    assert queue.following(shared, session.id, "Dr Li", first.item.number).item.number == second.item.number

    with pytest.raises(DataError, match="Choose a level for Relevance first"):
        ratings.submit(shared, session.id, second.item.number, "Dr Li", {"fluency": "3"})
    with pytest.raises(DataError, match="'5' is not a level of Fluency"):
        ratings.submit(shared, session.id, second.item.number, "Dr Li", {**GOOD, "fluency": "5"})
    with pytest.raises(DataError, match="No rater name"):
        queue.current(shared, session.id, "   ")
    with pytest.raises(DataError, match="has no item 99"):
        ratings.submit(shared, session.id, 99, "Dr Li", GOOD)


def test_eight_threads_rating_200_times_each_leave_exactly_the_expected_rows(shared: Workspace):
    session = make(shared, "Concurrent", max_prompts=25, overlap=8, seed=3)   # 50 items, everyone rates all
    expected: dict[tuple[int, str, str], str] = {}
    lock = threading.Lock()
    failures: list[BaseException] = []

    def rater(name: str) -> None:
        rng = random.Random(name)
        try:
            view = queue.current(shared, session.id, name)
            for _ in range(200):   # 50 first ratings, then 150 changes of earlier ones
                number = view.item.number if view.item else rng.randint(1, 50)
                values = {"fluency": str(rng.randint(1, 4)), "relevance": str(rng.randint(1, 3)), "safety": "safe"}
                ratings.submit(shared, session.id, number, name, values)
                with lock:
                    expected.update({(number, name, key): value for key, value in values.items()})
                if view.item:
                    view = queue.following(shared, session.id, name, number)
        except BaseException as error:  # noqa: BLE001 - reported by the test thread below
            failures.append(error)

    threads = [threading.Thread(target=rater, args=(f"rater-{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    stored = {(r.item, r.rater, r.criterion): r.value for r in ratings.read_all(shared, session.id)}
    assert len(stored) == 8 * 50 * 3 and stored == expected
    with closing(shared.connect()) as connection:
        handed = connection.execute("SELECT item, COUNT(*) FROM rating_assignments WHERE session_id = ? GROUP BY item",
                                    (session.id,)).fetchall()
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert len(handed) == 50 and {count for _, count in handed} == {8}


def test_agreement_equals_hand_computed_examples_and_the_maintained_packages():
    # Two raters, nominal, five items: 1/1, 1/2, 2/2, 2/2, 3/3 (ranks 0..2). By hand: the coincidence matrix
    # has o11=2, o12=o21=1, o22=4, o33=2, n=10, n_c=(3,5,2); alpha = 1 - (n-1)·Σ_off o / Σ_off n_c·n_k = 1 - 9·2/62.
    units = {1: {"a": 0, "b": 0}, 2: {"a": 0, "b": 1}, 3: {"a": 1, "b": 1}, 4: {"a": 1, "b": 1}, 5: {"a": 2, "b": 2}}
    nominal = agreement.alpha(units, 3, ordinal=False)
    assert nominal.value == pytest.approx(1 - 18 / 62) and nominal.items == 5 and nominal.level == "nominal"
    # Cohen's kappa by hand: p_o = 4/5; p_e = .4·.2 + .4·.6 + .2·.2 = .36; (0.8 - 0.36) / 0.64.
    # Linear weights: observed disagreement 1/5; expected Σ p_a(i)·p_b(j)·|i-j| = .76; 1 - .2/.76.
    (kappa,) = agreement.kappas(units, 3, ordinal=False)
    assert kappa.value == pytest.approx(0.44 / 0.64) and kappa.items == 5 and kappa.words == "substantial"
    assert agreement.kappas(units, 3, ordinal=True)[0].value == pytest.approx(1 - 0.2 / 0.76)

    # Krippendorff's own worked example (2011): 4 observers, 12 units, values 1-5, missing ratings;
    # his published results: nominal 0.743, ordinal 0.815.
    table = {"A": [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None], "B": [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
             "C": [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None], "D": [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None]}
    worked = {unit: {rater: values[unit] - 1 for rater, values in table.items() if values[unit] is not None}
              for unit in range(12)}
    assert agreement.alpha(worked, 5, ordinal=False).value == pytest.approx(0.743, abs=5e-4)
    assert agreement.alpha(worked, 5, ordinal=True).value == pytest.approx(0.815, abs=5e-4)

    assert agreement.alpha({1: {"a": 0}}, 3, True).value is None   # nobody overlaps: not measurable, in words
    same = agreement.alpha({1: {"a": 1, "b": 1}, 2: {"a": 1, "b": 1}}, 3, True)
    assert same.value is None and "agree completely" in same.words
    assert agreement.kappas({1: {"a": 1, "b": 1}, 2: {"a": 1, "b": 1}}, 3, True)[0].value is None


def test_intervals_equal_hand_computed_values():
    mean = Mean.of([4, 3, 2.5])   # mean 19/6; sd 0.7638; t(0.975, 2) = 4.3027
    assert mean.value == pytest.approx(19 / 6)
    assert mean.high - mean.value == pytest.approx(4.302653 * 0.763763 / 3 ** 0.5, rel=1e-5)
    share = Share.of(7, 10)       # Wilson: (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)
    z = 1.959964
    centre, half = (0.7 + z * z / 20) / (1 + z * z / 10), z * (0.021 + z * z / 400) ** 0.5 / (1 + z * z / 10)
    assert (share.low, share.high) == pytest.approx((centre - half, centre + half), rel=1e-6)
    assert Share.of(0, 0).words() == "no ratings yet" and Mean.of([2]).low is None
    assert (Mean.of([1, 4, 4], (1, 4)).low, Mean.of([1, 4, 4], (1, 4)).high) == (1, 4)   # never past the scale


def test_results_per_model_wins_safety_and_disagreements(shared: Workspace):
    session = make(shared, "Results", max_prompts=4, overlap=2, seed=5)
    items = sessions.items(shared, session.id)
    for item in items:   # FIRST is fluent and safe for both; on SECOND's fluency Ana and Ben differ by one level
        first = item.models[0] == FIRST
        ratings.submit(shared, session.id, item.number, "Ana", {"fluency": "4" if first else "2", "relevance": "3",
                                                                "safety": "safe" if first else "harmful_advice"})
        ratings.submit(shared, session.id, item.number, "Ben", {"fluency": "4" if first else "1", "relevance": "3",
                                                                "safety": "safe" if first else "harmful_advice"})
    found = results.session_results(shared, session.id)
    scores = {(row.model, row.criterion): row for row in found.scores}
    assert scores[(FIRST, "fluency")].mean.value == 4 and scores[(SECOND, "fluency")].mean.value == 1.5
    assert scores[(SECOND, "fluency")].counts == {"1": 4, "2": 4, "3": 0, "4": 0}
    assert scores[(SECOND, "fluency")].mean.n == 4 and scores[(SECOND, "fluency")].ratings == 8
    overall = {row.model: row.passed for row in found.choices if row.category == results.ALL_PROMPTS}
    assert (overall[FIRST].count, overall[FIRST].total, overall[SECOND].count) == (8, 8, 0)
    by_category = [row for row in found.choices if row.category != results.ALL_PROMPTS]
    assert by_category and sum(row.passed.total for row in by_category if row.model == FIRST) == 8
    alpha = {row.criterion: row.alpha for row in found.agreement}
    assert 0.667 < alpha["fluency"].value < 0.8 and alpha["fluency"].words.startswith("Acceptable")
    assert alpha["safety"].value == 1.0 and alpha["fluency"].items == 8
    assert {d.criterion for d in found.disagreements} == {"fluency"} and found.disagreements[0].spread == pytest.approx(1 / 3)
    assert found.to_json()["alpha"]["safety"] == 1.0

    pairwise = make(shared, "Pairs", source=f"session:{session.id}", mode="pairwise", overlap=2)
    assert pairwise.ready and pairwise.items == 4   # reused responses: nothing generated
    for item in sessions.items(shared, pairwise.id):
        winner = "A" if item.models[0] == FIRST else "B"
        ratings.submit(shared, pairwise.id, item.number, "Ana", {"preference": winner})
        ratings.submit(shared, pairwise.id, item.number, "Ben", {"preference": "tie" if item.number == 1 else winner})
    wins = {(row.model, row.opponent): row for row in results.session_results(shared, pairwise.id).wins}
    assert (wins[(FIRST, SECOND)].wins.count, wins[(FIRST, SECOND)].ties.count, wins[(FIRST, SECOND)].wins.total) == (7, 1, 8)
    assert wins[(SECOND, FIRST)].losses.count == 7
    sides = Counter(item.models[0] for item in sessions.items(shared, pairwise.id))
    assert set(sides) <= {FIRST, SECOND}


def test_export_and_import_round_trip_without_duplicates_and_refuse_bad_rows_whole(shared: Workspace, tmp_path: Path):
    session = make(shared, "Exchange", max_prompts=2, seed=2)
    for item in sessions.items(shared, session.id):
        ratings.submit(shared, session.id, item.number, "Ana", {**GOOD, "comment": "短评 ok"})
    csv_path, jsonl_path = tmp_path / "ratings.csv", tmp_path / "ratings.jsonl"
    assert exchange.export(shared, session.id, csv_path) == 4 * 4
    assert exchange.export(shared, session.id, jsonl_path) == 16
    rows = list(csv.DictReader(csv_path.open(encoding="utf-8-sig")))
    assert {row["model"] for row in rows} == {FIRST, SECOND} and rows[0]["response"] and rows[0]["prompt"]
    assert {row["value"] for row in rows if row["criterion"] == "comment"} == {"短评 ok"}
    before = ratings.read_all(shared, session.id)

    assert exchange.import_file(shared, session.id, csv_path).written == 16
    assert exchange.import_file(shared, session.id, jsonl_path).written == 16
    assert [(r.item, r.rater, r.criterion, r.value, r.updated) for r in ratings.read_all(shared, session.id)] == \
           [(r.item, r.rater, r.criterion, r.value, r.updated) for r in before]

    # Ratings made elsewhere: a spreadsheet with the four required columns and a new rater.
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("item,rater,criterion,value,timestamp\n1,Mei,fluency,3,2025-03-01T10:00:00Z\n1,Mei,relevance,2,\n"
                     "1,Mei,safety,privacy_leak,\n1,Mei,comment,,\n", encoding="utf-8")
    result = exchange.import_file(shared, session.id, sheet)
    assert (result.written, result.skipped_empty) == (3, 1)
    mei = {r.criterion: r for r in ratings.read_all(shared, session.id) if r.rater == "Mei"}
    assert mei["fluency"].value == "3" and mei["fluency"].updated.startswith("2025-03-01T10:00:00")

    bad = tmp_path / "bad.csv"
    bad.write_text("item,rater,criterion,value\n2,Mei,fluency,4\n2,Mei,fluency,9\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.csv, line 3: '9' is not a level of Fluency"):
        exchange.import_file(shared, session.id, bad)
    assert not any(r.rater == "Mei" and r.item == 2 for r in ratings.read_all(shared, session.id))   # none written
    (tmp_path / "other.csv").write_text("item,rater,criterion,value,session\n1,Mei,fluency,4,elsewhere\n")
    with pytest.raises(DataError, match="belongs to session 'elsewhere'"):
        exchange.import_file(shared, session.id, tmp_path / "other.csv")
    (tmp_path / "cols.csv").write_text("item,who,criterion,value\n1,Mei,fluency,4\n")
    with pytest.raises(DataError, match="has no column rater"):
        exchange.import_file(shared, session.id, tmp_path / "cols.csv")


def test_low_rated_items_with_corrected_answers_become_hard_examples_and_pairs_become_preferences(
        shared: Workspace, tmp_path: Path):
    session = make(shared, "Feedback", max_prompts=3, seed=4, overlap=2)
    items = sessions.items(shared, session.id)
    bad, fine, unsafe = items[0], items[1], items[2]
    ratings.submit(shared, session.id, bad.number, "Ana", {**GOOD, "fluency": "1", "corrected_answer": "Better answer."})
    ratings.submit(shared, session.id, bad.number, "Ben", {**GOOD, "fluency": "2"})
    ratings.submit(shared, session.id, fine.number, "Ana", {**GOOD, "corrected_answer": "Not needed."})
    ratings.submit(shared, session.id, unsafe.number, "Ben", {**GOOD, "safety": "privacy_leak",
                                                              "corrected_answer": "I can't share that."})
    candidates = feedback.hard_example_candidates(shared, session.id)
    assert [(c.item, c.why) for c in candidates] == sorted([(bad.number, "Fluency 1.5 of 1-4"),
                                                            (unsafe.number, "Safety: Privacy leak")])
    version = feedback.send_hard_examples(shared, session.id, [bad.number])
    rows = store.read_rows(shared, store.HARD_EXAMPLES_ID, version.version)
    assert rows[-1]["messages"] == [*bad.messages, {"role": "assistant", "content": "Better answer."}]
    assert rows[-1]["source"] == {"rating_session": session.id, "items": [bad.number]}
    with pytest.raises(DataError, match="not low-rated items with a corrected answer"):
        feedback.send_hard_examples(shared, session.id, [fine.number])

    pairwise = make(shared, "Feedback pairs", source=f"session:{session.id}", mode="pairwise", overlap=2)
    votes = {}
    for item in sessions.items(shared, pairwise.id):
        votes[item.number] = ["A", "A"] if item.prompt == 1 else (["A", "B"] if item.prompt == 2 else ["B", "tie"])
        for rater, vote in zip(("Ana", "Ben"), votes[item.number]):
            ratings.submit(shared, pairwise.id, item.number, rater, {"preference": vote})
    path = tmp_path / "pairs.jsonl"
    assert feedback.write_preference_pairs(shared, pairwise.id, path) == 2   # the even split is left out
    pairs = [json.loads(line) for line in path.read_text().splitlines()]
    by_prompt = {item.prompt: item for item in sessions.items(shared, pairwise.id)}
    assert pairs[0].keys() == {"prompt", "chosen", "rejected"}
    expected = {(by_prompt[1].messages[-1]["content"], by_prompt[1].responses[0], by_prompt[1].responses[1]),
                (by_prompt[3].messages[-1]["content"], by_prompt[3].responses[1], by_prompt[3].responses[0])}
    assert {(p["prompt"], p["chosen"], p["rejected"]) for p in pairs} == expected
    with pytest.raises(DataError, match="not a pairwise session"):
        feedback.preference_pairs(shared, session.id)


def test_sessions_refuse_what_cannot_work_in_words(shared: Workspace, tmp_path: Path):
    cases = [
        (SessionSpec("  ", [FIRST]), ConfigError, "has no name"),
        (SessionSpec("x", [FIRST], mode="pairwise"), ConfigError, "needs two or more models"),
        (SessionSpec("x", [FIRST], "nowhere"), DataError, "'nowhere' is not a prompt set"),
        (SessionSpec("x", [FIRST], "dataset:missing"), DataError, "no dataset 'missing'"),
        (SessionSpec("x", ["run:missing"]), ConfigError, "Run 'missing' has no adapter yet"),
        (SessionSpec("x", [FIRST], overlap=0), ConfigError, "0 raters per item"),
        (SessionSpec("x", [FIRST], criteria=[criteria.PREFERENCE]), ConfigError, "scale session cannot rate"),
        (SessionSpec("x", [FIRST], max_prompts=0), DataError, "at least one prompt"),
    ]
    for bad, error, message in cases:
        with pytest.raises(error, match=message):
            sessions.create(shared, bad)
    assert not list(shared.ratings_dir.glob("x*")) and "x" not in {s.id for s in sessions.list_sessions(shared)}

    with pytest.raises(ConfigError, match="Criterion 1 \\(levels\\)"):
        criteria.parse("- name: tone\n  label: Tone\n  kind: scale\n  levels: [{value: '1', label: low}]")
    custom = criteria.parse("- fluency\n- name: tone\n  label: Tone\n  kind: scale\n  levels:\n"
                            "  - {value: '1', label: Cold}\n  - {value: '2', label: Warm, description: kind words}")
    assert [c.name for c in custom] == ["fluency", "tone"] and custom[1].option(custom[1].levels[1]) == "2 · Warm — kind words"


def test_prompt_sets_from_files_with_or_without_answers_and_dataset_versions(shared: Workspace, tmp_path: Path):
    prompt_only = tmp_path / "prompts.jsonl"
    prompt_only.write_text('{"prompt": "When do you open?"}\n{"messages": [{"role": "system", "content": "Be brief."}, '
                           '{"role": "user", "content": "Where are you?"}]}\n{"prompt": "Hi", "response": "Hello!"}\n')
    found = prompts.read(shared, f"file:{prompt_only}")
    assert [p.messages[-1]["content"] for p in found.prompts] == ["When do you open?", "Where are you?", "Hi"]
    assert found.prompts[1].messages[0]["role"] == "system" and found.prompts[2].reference == "Hello!"
    table = tmp_path / "prompts.csv"
    table.write_text("question\n诊所几点开门？\nDo you take walk-ins?\n", encoding="utf-8")
    assert [p.text for p in prompts.read(shared, f"file:{table}").prompts] == ["诊所几点开门？", "Do you take walk-ins?"]
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"prompt": "ok"}\n{"text": "no prompt"}\n')
    with pytest.raises(DataError, match="line 2: unknown format"):
        prompts.read(shared, f"file:{broken}")
    with pytest.raises(ValueError, match="missing field 'response'"):   # training data still needs answers
        formats.conversation({"prompt": "training data needs an answer"})

    store.ensure_demo_dataset(shared)
    demo = prompts.read(shared, f"dataset:{store.DEMO_DATASET_ID}")
    assert "v1" in demo.description and len(demo.prompts) == 349 and demo.prompts[0].reference.startswith("Referrals")
    split = store.split_version(shared, store.DEMO_DATASET_ID, 1, 0.1)
    held_out = prompts.read(shared, f"dataset:{store.DEMO_DATASET_ID}/v{split.version}")
    assert "validation rows" in held_out.description and len(held_out.prompts) == split.validation_rows
    red = prompts.read(shared, "redteam")
    assert len(red.prompts) >= 48 and {p.category for p in red.prompts} == {
        "harmful_advice", "privacy_leak", "discrimination", "misinformation", "over_refusal"}


def test_the_job_runner_generates_in_its_own_process_and_a_run_report_gets_the_summary(
        workspace: Workspace, tiny_model_dir: Path, tmp_path: Path):
    from test_train import start_run, tiny_config, write_rows

    from core.jobs.runner import JobManager
    from core.system.device_lock import DeviceLock

    run_folder, _ = start_run(workspace, tiny_config(tiny_model_dir, write_rows(tmp_path / "faq.jsonl", repeat=3),
                                                     "train.max_steps=2", "generation.max_new_tokens=5"))
    run_key, base_key = f"run:{run_folder.run_id}", f"base:{tiny_model_dir}"
    assert results.summary_for_run(workspace, run_folder.run_id) is None   # no session rated it yet
    session = sessions.create(workspace, SessionSpec("Base vs tuned", [base_key, run_key], "redteam", "pairwise",
                                                     max_prompts=3, overlap=2, max_new_tokens=5))
    jobs = JobManager(workspace, DeviceLock(workspace))
    folder = workspace.rating_folder(session.id).root
    job = jobs.start_job(generation.KIND, folder, generation.title(session), {"session": session.id})
    assert jobs.wait_job(job.root, 300)
    status = jobs.job_status(folder)
    assert status.state == "finished" and "ready to rate" in status.message, (job.output.read_text()[-2000:])
    assert sessions.get(workspace, session.id).ready and DeviceLock(workspace).holder() is None
    run_answers = [text for (_, model), text in prompts.read_responses(workspace.rating_folder(session.id)).items()
                   if model == run_key]
    assert len(run_answers) == 3

    for item in sessions.items(workspace, session.id):
        run_side = "A" if item.models[0] == run_key else "B"
        for rater in ("Ana", "Ben"):
            ratings.submit(workspace, session.id, item.number, rater, {"preference": run_side})
    summary = results.summary_for_run(workspace, run_folder.run_id)
    assert summary.model == run_key and [s.session.id for s in summary.sessions] == [session.id]
    (wins,) = [row for row in summary.sessions[0].wins if row.model == run_key]
    assert (wins.wins.count, wins.wins.total) == (6, 6) and wins.wins.low > 0.5
    text = "\n".join(summary.lines())
    assert f"{run_key} vs {base_key}: wins 100%" in text and "agreement on preference" in text
    json.dumps(summary.to_json())   # plain JSON for the run report

    from core.evaluation.report import build_report

    report = build_report(workspace, run_folder.run_id).markdown   # the run's report and its model cards say it too
    assert "Base vs tuned: this run against the other side" in report and "| 100% (95% CI 61%–100%, 6 of 6) |" in report
    assert "1 session(s), 2 rater(s), 6 ratings" in report
    card = results.card_summary(workspace, run_folder.run_id)
    assert card[f"Against {base_key} (session Base vs tuned)"].startswith("wins 100%")
