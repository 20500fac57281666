"""Evaluation end to end on a tiny model: a tuned adapter that memorised a small set beats the base on it with
a confidence interval above 0; results land in runs/<id>/evals/<eval_id>/ as the issue names them; the worst
answers go back to training as hard examples with lineage, mixed 8:2 into a new dataset version, and a run
starts on it; a cancelled evaluation leaves no results; the CLI and the report."""

import json
from pathlib import Path

import pytest
from test_train import FAQ, start_run, tiny_config, write_rows

from core.data import store
from core.errors import DataError, WorkspaceError
from core.evaluation import heldout, job, report, results, showcase
from core.evaluation.workflow import METRICS_FILE, PREDICTIONS_FILE, EvalRequest, evaluate
from core.jobs import worker
from core.jobs.runner import JobManager
from core.progress import Cancelled, Progress
from core.runs import records
from core.system import job_status
from core.system.device_lock import DeviceLock
from core.training import trainset
from core.workspace import Workspace

MEMORISE = ["train.max_steps=120", "train.learning_rate=0.02", "data.validation_ratio=0", "generation.temperature=0",
            "generation.max_new_tokens=16", "generation.repetition_penalty=1.0", "train.eval_steps=0", "train.save_steps=0"]


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory, learnable_model_dir: Path):
    """A workspace with a dataset version, a run that memorised it, and a base-vs-tuned evaluation on it."""
    root = tmp_path_factory.mktemp("evaluation")
    workspace = Workspace.open(root / "ws")
    faq = write_rows(root / "faq.jsonl", FAQ)
    version = store.import_upload(workspace, faq, "faq")
    data_path = f"datasets/{version.dataset_id}/v1/data.jsonl"
    run, _ = start_run(workspace, tiny_config(learnable_model_dir, Path(data_path), "name=faq-memorised", *MEMORISE))
    folder, title, settings = job.prepare(workspace, EvalRequest(run.run_id, data_file=str(faq)))
    metrics = evaluate(workspace, folder, EvalRequest.from_settings(settings))
    return workspace, run.run_id, folder, metrics, faq


def test_a_memorised_set_scores_higher_than_the_base_with_an_interval_above_zero(evaluated):
    workspace, run_id, folder, metrics, _ = evaluated
    base_key, run_key = metrics["baseline"], f"run:{run_id}"
    assert base_key.startswith("base:") and list(metrics["models"]) == [base_key, run_key]
    for model in metrics["models"].values():
        for name in ("bleu", "chrf", "rouge1", "rouge2", "rougeL", "perplexity", "exact_match"):
            assert {"value", "ci_low", "ci_high"} <= model[name].keys()
        assert model["counts"]["samples"] == len(FAQ) and model["counts"]["by_language"] == {"en": 4}
        # The run's reply settings (generation.*) answered, and are saved with the results.
        assert model["generation"] == {"max_new_tokens": 16, "temperature": 0.0, "top_p": 0.9, "repetition_penalty": 1.0}
    tuned, base = metrics["models"][run_key], metrics["models"][base_key]
    assert tuned["chrf"]["value"] > 80 and tuned["chrf"]["value"] > base["chrf"]["value"] + 50
    assert tuned["perplexity"]["value"] < base["perplexity"]["value"]
    (comparison,) = metrics["comparisons"]
    assert (comparison["model"], comparison["baseline"]) == (run_key, base_key)
    for name in ("bleu", "chrf", "rougeL"):
        delta = comparison["deltas"][name]
        assert delta["ci_low"] > 0 and delta["significant"], (name, delta)
    assert comparison["deltas"]["perplexity"]["ci_high"] < 0    # lower is better
    assert comparison["deltas"]["chrf"]["better"] == 4

    lines = [json.loads(line) for line in (folder / PREDICTIONS_FILE).read_text().splitlines()]
    assert len(lines) == 2 * len(FAQ)
    assert {"prompt", "reference", "model", "prediction", "scores"} <= lines[0].keys()
    assert {"bleu", "chrf", "rouge1", "rouge2", "rougeL", "exact_match", "loss", "perplexity"} <= lines[0]["scores"].keys()
    tuned_lines = [line for line in lines if line["model"] == run_key]
    assert all(line["change"]["chrf"] in ("better", "worse", "same") for line in tuned_lines)
    assert sum(line["prediction"] == line["reference"] for line in tuned_lines) >= 2   # it memorised them
    assert json.loads((folder / METRICS_FILE).read_text())["complete"] is True
    assert [summary.eval_id for summary in results.list_evals(workspace, run_id)] == [folder.name]
    card = results.card_summary(workspace, run_id)   # what an export's model card states about the run
    assert card["Evaluation"].startswith(folder.name) and card["chrf"].startswith(f"{tuned['chrf']['value']:.2f} (95% CI")
    assert "baseline" in card["Against the baseline"]


def test_a_showcase_states_the_evaluation_against_the_base_as_typed_figures(evaluated):
    workspace, run_id, folder, metrics, _ = evaluated
    shown = showcase.showcase(workspace, run_id)   # what the Demo tab shows
    assert run_id in [status.run_id for status in showcase.finished_runs(workspace)]
    assert shown.chat.keys == (metrics["baseline"], f"run:{run_id}") and shown.training.steps == 120
    assert shown.evaluation is not None and shown.evaluation.eval_id == folder.name
    assert shown.evaluation.samples == len(FAQ) and shown.ratings is None and shown.loss_records
    by_name = {metric.name: metric for metric in shown.evaluation.metrics}
    chrf, perplexity = by_name["chrF"], by_name["Perplexity"]
    assert chrf.tuned.value == metrics["models"][f"run:{run_id}"]["chrf"]["value"]
    assert (chrf.verdict, chrf.better) == ("better", 4) and chrf.change.words(signed=True).startswith("+")
    assert perplexity.lower_is_better and perplexity.change.value < 0 and perplexity.verdict == "better"
    assert "(95% CI " in chrf.tuned.words()


def test_the_validation_split_is_what_training_held_out(workspace: Workspace, tiny_model_dir: Path, tmp_path: Path):
    data = write_rows(tmp_path / "faq.jsonl", [(f"{q} ({n})", a) for n in range(2) for q, a in FAQ])
    config = tiny_config(tiny_model_dir, data, "data.validation_ratio=0.25")
    run = records.create(workspace, config)
    held = heldout.run_validation(workspace, run.run_id)
    expected = trainset.hold_out(config, workspace)
    assert [item.source for item in held.items] == [source for source, _ in expected.validation] and len(held.items) == 2
    trained_prompts = {messages[0]["content"] for _, messages in expected.splits[0].train}
    assert not trained_prompts & {item.prompt for item in held.items}
    assert held.origin["kind"] == "validation" and held.origin["validation_ratio"] == 0.25
    none_held = records.create(workspace, tiny_config(tiny_model_dir, data, "data.validation_ratio=0", "name=all-in"))
    with pytest.raises(DataError, match="held out no validation rows"):
        heldout.run_validation(workspace, none_held.run_id)


def test_the_hard_example_round_trip_builds_a_mixed_version_with_lineage(evaluated):
    workspace, run_id, folder, _, _ = evaluated
    eval_id = folder.name
    worst = results.samples(workspace, run_id, eval_id, sort_by="chrf")
    assert [row.score for row in worst] == sorted(row.score for row in worst)   # worst first
    assert worst[0].baseline_answer is not None and worst[0].change in ("better", "worse", "same")
    by_loss = results.samples(workspace, run_id, eval_id, sort_by="loss")
    assert [row.score for row in by_loss] == sorted((row.score for row in by_loss), reverse=True)

    results.save_ideal_answer(workspace, run_id, eval_id, worst[0].index, "The ideal answer, edited.")
    edited = {row.index: row for row in results.samples(workspace, run_id, eval_id)}[worst[0].index]
    assert edited.edited and edited.reference == "The ideal answer, edited." and edited.original_reference != edited.reference
    hard = results.send_to_hard_examples(workspace, run_id, eval_id, [worst[0].index, worst[1].index])
    assert (hard.dataset_id, hard.version, hard.rows) == (store.HARD_EXAMPLES_ID, 1, 2)
    rows = store.read_rows(workspace, store.HARD_EXAMPLES_ID, 1)
    (sent,) = [row for row in rows if row["messages"][:-1] == worst[0].context]
    assert sent["messages"][-1]["content"] == "The ideal answer, edited."
    assert all(row["source"] == {"run": run_id, "eval": eval_id} for row in rows)
    assert {row.index: row.sent for row in results.samples(workspace, run_id, eval_id)}[worst[1].index] == 1

    planned = results.next_run(workspace, run_id, (8, 2), two_stage=True)
    mixed = planned.mixed
    assert mixed is not None and (mixed.dataset_id, mixed.version, mixed.kind, mixed.parent) == ("faq", 2, "mix", 1)
    mixed_rows = store.read_rows(workspace, "faq", 2)
    assert len(mixed_rows) == 5 and sum(row.get("source") == "hard-examples/v1" for row in mixed_rows) == 1   # 8 : 2
    assert store.read_report(workspace, "faq", 2).parameters["other"] == "hard-examples/v1"
    assert planned.config.data.train_path == "datasets/faq/v2/data.jsonl" and planned.config.lora.init_from == run_id
    assert planned.config.generation == records.load_config(workspace.run_folder(run_id)).generation
    lines = report.lineage(workspace, planned.config.data.train_path)
    assert lines[0].startswith("faq v2: mix") and "hard-examples v1: hard-examples" in lines[0] and f"run {run_id}" in lines[0]
    assert lines[-1].startswith("faq v1: upload")
    scratch = results.next_run(workspace, run_id, (4, 1), two_stage=False)
    assert scratch.config.lora.init_from == "" and scratch.mixed.version == 3

    next_folder, _ = start_run(workspace, planned.config.model_copy(
        update={"train": planned.config.train.model_copy(update={"max_steps": 2})}))
    assert records.read_status(next_folder).state == "finished"   # the two-stage run trains from the adapter


def test_mixing_a_split_version_keeps_its_validation_rows_out_of_training(workspace: Workspace, tmp_path: Path):
    base = store.import_upload(workspace, write_rows(tmp_path / "faq.jsonl", [(f"{q} ({n})", a) for n in range(5)
                                                                               for q, a in FAQ]), "faq")
    split = store.split_version(workspace, base.dataset_id, 1, 0.25, seed=1)
    store.add_hard_examples(workspace, [[{"role": "user", "content": "Parking?"}, {"role": "assistant", "content": "Free."}]],
                            {"run": "r1", "eval": "e1"})
    mixed = store.mix_versions(workspace, "faq", split.version, store.HARD_EXAMPLES_ID, 1, (8, 2))
    folder = workspace.dataset_version_dir("faq", mixed.version)
    validation = store.load_conversations(folder / "validation.jsonl")
    assert (mixed.rows, mixed.validation_rows) == (split.rows + round(split.rows / 4), split.validation_rows)
    assert not {json.dumps(c) for c in validation} & {json.dumps(c) for c in store.load_conversations(folder / "data.jsonl")}


def test_a_run_on_plain_files_gets_the_hard_examples_as_a_mix_share(evaluated, learnable_model_dir: Path):
    workspace, run_id, _, _, faq = evaluated
    plain = records.create(workspace, tiny_config(learnable_model_dir, faq, "name=plain-file"))
    planned = results.next_run(workspace, plain.run_id, (8, 2))
    assert planned.mixed is None
    assert planned.config.data.mix == {str(faq): 8.0, "datasets/hard-examples/v1/data.jsonl": 2.0}


def test_cancel_leaves_no_results_and_the_job_runner_runs_and_cancels_evaluations(evaluated):
    workspace, run_id, _, _, faq = evaluated
    reports: list[int] = []

    def stop_after_the_first_batch() -> bool:
        return bool(reports)
    folder, _, settings = job.prepare(workspace, EvalRequest(run_id, data_file=str(faq), batch_size=2))
    with pytest.raises(Cancelled):
        evaluate(workspace, folder, EvalRequest.from_settings(settings),
                 Progress(report=lambda done, total, message: reports.append(done), stop_requested=stop_after_the_first_batch))
    assert reports and not (folder / METRICS_FILE).exists() and not (folder / PREDICTIONS_FILE).exists()
    with pytest.raises(WorkspaceError, match="has no results"):
        results.load_metrics(workspace, run_id, folder.name)

    # Through the job process code: Cancel (the STOP file) ends it as 'stopped', without results.
    folder, title, settings = job.prepare(workspace, EvalRequest(run_id, data_file=str(faq)))
    job_status.create(job_status.JobFolder(folder), job.KIND, title, settings)
    (folder / "STOP").touch()
    with pytest.raises(Cancelled):
        worker.run_other_job(workspace, job_status.JobFolder(folder))
    assert job_status.read(job_status.JobFolder(folder)).state == "stopped" and not (folder / METRICS_FILE).exists()
    states = {summary.eval_id: summary.state for summary in results.list_evals(workspace, run_id)}
    assert states[folder.name] == "stopped" and results.latest_complete(workspace, run_id) != folder.name

    # The studio's path: a background process holding the device lock, to the end.
    jobs = JobManager(workspace, DeviceLock(workspace))
    folder, title, settings = job.prepare(workspace, EvalRequest(run_id, data_file=str(faq), include_base=False))
    jobs.start_job(job.KIND, folder, title, settings)
    assert jobs.wait_job(folder, 180)
    finished = jobs.job_status(folder)
    assert finished.state == "finished" and "4 prompts: bleu" in finished.message and finished.done == finished.total
    assert list(results.load_metrics(workspace, run_id, folder.name)["models"]) == [f"run:{run_id}"]


def test_eval_and_report_commands(evaluated, capsys: pytest.CaptureFixture, tmp_path: Path):
    from cli.main import main

    workspace, run_id, _, _, faq = evaluated
    assert main(["eval", run_id, "--workspace", str(workspace.root), "--data", str(faq), "--base", "--limit", "3",
                 "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert Path(printed["folder"]).parent == workspace.run_folder(run_id).evals and printed["held_out"]["samples"] == 3
    assert len(printed["models"]) == 2 and printed["comparisons"][0]["deltas"]["chrf"]["delta"] > 0
    assert main(["eval", "nope", "--workspace", str(workspace.root)]) == 2   # no such run: bad input

    assert main(["report", run_id, "--workspace", str(workspace.root), "--out", str(tmp_path / "faq.html")]) == 0
    html_text = (tmp_path / "faq.html").read_text()
    markdown = (tmp_path / "faq.md").read_text()
    assert capsys.readouterr().out.split() == [str(tmp_path / "faq.md"), str(tmp_path / "faq.html")]
    for heading in ("Training", "Data lineage", "Automatic metrics", "Human ratings", "Configuration"):
        assert f">{heading}</h2>" in html_text and f"## {heading}" in markdown
    assert "<svg" in html_text and "polyline" in html_text and "data:image/svg+xml;base64," in markdown
    assert "<script" not in html_text and "src=" not in html_text and "href=" not in html_text   # nothing fetched
    assert "faq v1: upload" in html_text and "CI excludes 0" not in html_text and "95%" in html_text
    assert "No rating session has rated this run yet." in markdown

    ratings = report.RatingsSummary("1 session, 2 raters", [report.RatingsTable(
        "Fluency (1-4)", ["Model", "Mean", "95% CI"], [["tuned", 3.4, "[3.1, 3.7]"]])], ["Krippendorff's alpha: 0.71"])
    rated = report.build_report(workspace, run_id, ratings=ratings)
    assert "Fluency (1-4)" in rated.html and "| tuned | 3.4 | [3.1, 3.7] |" in rated.markdown
