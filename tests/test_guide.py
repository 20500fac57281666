"""The first-run guide's reading of a workspace (core.guide): a real workspace walked along the path — the
demo split, a run on the tiny model started and finished, an evaluation, a rating session, an adapter export —
with the guide moving on one step at a time; and the glossary covers every word the guide promises."""

from pathlib import Path

import pytest
from test_train import FAQ, tiny_config, write_rows

from core import glossary, guide
from core.data import store
from core.errors import StudioError
from core.evaluation import job as eval_job
from core.evaluation.workflow import EvalRequest, evaluate
from core.export import job as export_job
from core.export import records as export_records
from core.jobs.worker import run_job
from core.progress import QUIET
from core.rating import sessions
from core.runs import records
from core.system import job_status
from core.workspace import Workspace


def at(workspace: Workspace) -> str:
    """The key of the step to do now, or "" once every step is done."""
    now = guide.current(guide.journey(workspace))
    return now.key if now else ""


def test_a_fresh_workspace_starts_at_data_with_the_demo_and_the_quick_preset(workspace: Workspace):
    store.ensure_demo_dataset(workspace)
    steps = guide.journey(workspace)
    assert [step.key for step in steps] == ["data", "configure", "train", "evaluate", "rate", "chat", "export"]
    assert not any(step.done for step in steps) and all(step.todo for step in steps)
    assert guide.current(steps) is steps[0] and "demo dataset" in steps[0].todo
    assert "**Quick demo (CPU)**" in steps[1].todo and "*Demo: clinic patient FAQ (zh/en) · v1*" in steps[1].todo


def test_each_step_is_done_once_the_workspace_shows_it(workspace: Workspace, tiny_model_dir: Path, tmp_path: Path):
    store.ensure_demo_dataset(workspace)
    store.split_version(workspace, store.DEMO_DATASET_ID, 1, 0.2)   # the demo split counts as the data step
    assert at(workspace) == "configure"
    assert "· v2*" in guide.journey(workspace)[1].todo               # Configure suggests the newest version

    own = store.import_upload(workspace, write_rows(tmp_path / "faq.jsonl", FAQ, repeat=3), "My FAQ")
    data_path = Path(f"datasets/{own.dataset_id}/v1/data.jsonl")
    folder = records.create(workspace, tiny_config(tiny_model_dir, data_path, "name=first", "train.max_steps=2",
                                                   "train.eval_steps=0", "train.save_steps=0"))
    steps = guide.journey(workspace)
    assert steps[0].evidence == "your dataset *My FAQ* is in"
    assert steps[1].done and guide.current(steps) is steps[2] and "*first* is training" in steps[2].todo

    run_job(folder, workspace)
    assert at(workspace) == "evaluate"
    assert "pick run *first*" in guide.journey(workspace)[3].todo

    eval_folder, _, settings = eval_job.prepare(workspace, EvalRequest(folder.run_id, limit=2, include_base=False))
    evaluate(workspace, eval_folder, EvalRequest.from_settings(settings))
    assert at(workspace) == "rate"

    sessions.create(workspace, sessions.SessionSpec("Guide", [f"run:{folder.run_id}"], max_prompts=2))
    steps = guide.journey(workspace)
    assert steps[4].evidence == "1 rating session(s)" and guide.current(steps) is steps[5]   # chat: no record of its own

    export_folder, title, export_settings = export_records.new_export(workspace, folder.run_id, "adapter")
    job_status.create(job_status.JobFolder(export_folder), export_records.KIND, title, export_settings)
    export_job.run(workspace, export_folder, export_settings, QUIET)
    steps = guide.journey(workspace)
    assert all(step.done for step in steps) and guide.current(steps) is None


def test_a_failed_run_says_why_and_sends_back_to_configure(workspace: Workspace, tiny_model_dir: Path):
    store.ensure_demo_dataset(workspace)
    config = tiny_config(tiny_model_dir, Path("no-such-file.jsonl"), "name=broken")
    with pytest.raises(StudioError):
        run_job(records.create(workspace, config), workspace)
    train = guide.journey(workspace)[2]
    assert not train.done and "*broken* failed:" in train.todo and "**Configure**" in train.todo


def test_the_glossary_explains_every_promised_word():
    promised = ["LoRA", "Rank (r)", "Alpha", "Epoch", "Learning rate", "Batch size", "Perplexity", "BLEU", "ROUGE",
                "chrF", "Quantisation", "Adapter", "Merge", "GGUF", "Validation split", "Overfitting", "Checkpoint",
                "OOM"]
    assert sorted(glossary.TERMS) == sorted(promised)
    assert all(10 < len(meaning) < 320 and meaning.endswith(".") for meaning in glossary.TERMS.values())
