"""Exports of a trained run: merged (logits equal the adapter's), adapter-only (loads with peft), int8
(loads with plain transformers and answers), 4-bit refused on the CPU, GGUF (loads back, same top
token), each listed only once complete; a failed or cancelled export leaves no half-written model."""

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from support import MEMORISED, QUESTIONS, REPO, MemorisedRuns

from core.errors import ConfigError, StudioError
from core.export import card, formats, job, merge, records, source
from core.inference import choices
from core.inference.chat import ChatEngine, Turn
from core.jobs.runner import JobManager
from core.progress import QUIET, Cancelled, Progress
from core.system import job_status
from core.system.device_lock import DeviceLock
from core.workspace import ExportFolder, Workspace


def export(workspace: Workspace, run_id: str, format_key: str, progress: Progress = QUIET, **extra) -> ExportFolder:
    """Run the export workflow in this process, as the job process would (its job.json written first)."""
    folder, title, settings = records.new_export(workspace, run_id, format_key)
    job_status.create(job_status.JobFolder(folder), records.KIND, title, {**settings, **extra})
    job.run(workspace, folder, {**settings, **extra}, progress)
    return ExportFolder(folder)


def chat_prompt(base: Path, question: str) -> dict:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base)
    return tokenizer.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True,
                                         return_tensors="pt", return_dict=True)


def greedy_reply(model, base: Path, question: str) -> str:
    from transformers import AutoTokenizer

    inputs = chat_prompt(base, question)
    with torch.inference_mode():
        output = model.generate(**inputs, max_new_tokens=24, do_sample=False)
    return AutoTokenizer.from_pretrained(base).decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)


def listed(workspace: Workspace) -> set[str]:
    return {choice.key for choice in choices.available(workspace)}


def test_a_merged_export_gives_the_adapters_logits_and_is_listed_once_complete(memorised_runs: MemorisedRuns):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    workspace, run_id = memorised_runs.workspace, memorised_runs.run_ids["clinic"]
    done = export(workspace, run_id, "merged", max_shard_size="100KB")

    # Plain transformers loads it (sharded: the tiny model is larger than 100 KB), and its logits are the
    # adapter's within the stated tolerance.
    assert (done.model / "model.safetensors.index.json").is_file() and len(list(done.model.glob("*.safetensors"))) > 1
    merged = AutoModelForCausalLM.from_pretrained(done.model)
    adapted = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(memorised_runs.base),
                                        str(workspace.run_folder(run_id).adapter))
    inputs = chat_prompt(memorised_runs.base, QUESTIONS[0])
    with torch.inference_mode():
        difference = (merged(**inputs).logits - adapted(**inputs).logits).abs().max().item()
    assert difference <= merge.FP32_TOLERANCE
    assert greedy_reply(merged, done.model, QUESTIONS[0]) == MEMORISED["clinic"]

    manifest = json.loads(done.manifest.read_text())
    assert manifest["complete"] and manifest["kind"] == "merged" and manifest["model_dir"] == "model"
    assert manifest["verification"]["max_abs_logit_diff"] <= merge.FP32_TOLERANCE
    assert manifest["generation"]["temperature"] == 0   # the run's reply settings travel with it
    assert json.loads((done.model / "generation_config.json").read_text())["do_sample"] is False
    assert "<|im_start|>" in (done.model / "chat_template.jinja").read_text()
    card = done.card.read_text()
    for fact in ("Base model", str(memorised_runs.base), "clinic.jsonl", "rank 8", "Final training loss",
                 "max abs logit diff", "Not evaluated yet", "Not rated yet", "AutoModelForCausalLM"):
        assert fact in card, fact
    assert (done.model / "README.md").read_text() == card

    key = f"export:{done.export_id}"
    assert key in listed(workspace)
    engine = ChatEngine(workspace, DeviceLock(workspace))
    reply = list(engine.stream([Turn(key, [{"role": "user", "content": QUESTIONS[1]}])]))[-1][0]
    assert reply.text == MEMORISED["clinic"]


def test_an_export_that_fails_or_is_cancelled_leaves_only_its_job_record(memorised_runs: MemorisedRuns,
                                                                           monkeypatch: pytest.MonkeyPatch):
    workspace, run_id = memorised_runs.workspace, memorised_runs.run_ids["garage"]
    before = listed(workspace)
    monkeypatch.setattr(merge, "FP32_TOLERANCE", -1.0)   # no merge can pass: the check must stop the export
    with pytest.raises(StudioError, match="does not reproduce the adapter"):
        export(workspace, run_id, "merged")
    monkeypatch.undo()
    steps_seen = []
    cancel_after_two = Progress(report=lambda done, total, message: steps_seen.append(message),
                                stop_requested=lambda: len(steps_seen) >= 2)
    with pytest.raises(Cancelled):
        export(workspace, run_id, "merged", cancel_after_two)
    for record in records.list_exports(workspace):
        if not record.complete:
            assert {path.name for path in record.folder.iterdir()} <= set(ExportFolder.JOB_FILES)
            assert record.format == "merged" and record.run_id == run_id
    assert listed(workspace) == before


def test_an_adapter_only_export_is_a_zip_that_loads_with_peft(memorised_runs: MemorisedRuns, tmp_path: Path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    done = export(memorised_runs.workspace, memorised_runs.run_ids["garage"], "adapter")
    with zipfile.ZipFile(done.adapter_zip) as packed:
        packed.extractall(tmp_path)
    unpacked = tmp_path / done.export_id
    assert {"adapter_config.json", "adapter_model.safetensors", "README.md"} <= {path.name for path in unpacked.iterdir()}
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(memorised_runs.base), str(unpacked))
    assert greedy_reply(model, memorised_runs.base, QUESTIONS[2]) == MEMORISED["garage"]
    manifest = json.loads(done.manifest.read_text())
    assert manifest["files"] == [done.adapter_zip.name, "adapter/"] and "model_dir" not in manifest
    assert f"export:{done.export_id}" not in listed(memorised_runs.workspace)   # an adapter is chatted with as its run


def test_an_int8_export_loads_with_plain_transformers_and_answers(memorised_runs: MemorisedRuns):
    from transformers import AutoModelForCausalLM

    done = export(memorised_runs.workspace, memorised_runs.run_ids["clinic"], "int8")
    config = json.loads((done.model / "config.json").read_text())
    assert config["quantization_config"]["quant_method"] == "torchao"
    model = AutoModelForCausalLM.from_pretrained(done.model)
    assert greedy_reply(model, done.model, QUESTIONS[3]) == MEMORISED["clinic"]
    figures = json.loads(done.manifest.read_text())["verification"]
    assert figures["size_bytes"] < figures["size_unquantised_bytes"]
    assert figures["perplexity"] > 0 and abs(figures["perplexity_change"]) < 0.25
    assert figures["measured_on"] == "1 conversation(s) of the validation split"
    assert "perplexity change" in done.card.read_text()


def test_four_bit_is_refused_on_the_cpu_with_the_reason(memorised_runs: MemorisedRuns):
    with pytest.raises(ConfigError, match="refused on the CPU: bitsandbytes' NF4 reloads broken"):
        records.new_export(memorised_runs.workspace, memorised_runs.run_ids["clinic"], "nf4")
    with pytest.raises(ConfigError, match="Unknown export format 'zip'"):
        records.new_export(memorised_runs.workspace, memorised_runs.run_ids["clinic"], "zip")
    with pytest.raises(ConfigError, match="has no adapter to export"):
        records.new_export(memorised_runs.workspace, "no-such-run", "merged")


def test_an_export_job_runs_in_its_own_process_and_the_cli_exports_too(memorised_runs: MemorisedRuns):
    workspace, run_id = memorised_runs.workspace, memorised_runs.run_ids["clinic"]
    jobs = JobManager(workspace, DeviceLock(workspace))
    folder, title, settings = records.new_export(workspace, run_id, "adapter", name="clinic for sharing")
    jobs.start_job(records.KIND, folder, title, settings)
    assert jobs.wait_job(folder, 120)
    status = jobs.job_status(folder)
    assert status.state == "finished" and "zip of" in status.message and status.done == status.total
    assert folder.name == "clinic-for-sharing" and records.read(ExportFolder(folder)).complete

    command = [sys.executable, "-m", "cli", "export", run_id, "--format", "adapter", "--workspace", str(workspace.root)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Exported run 'clinic' as Adapter only (zip)" in done.stdout
    refused = subprocess.run([*command[:5], "--format", "nf4", *command[-2:]], cwd=REPO, capture_output=True, text=True)
    assert refused.returncode == 2 and refused.stderr.startswith("error: 4-bit NF4 export is refused on the CPU")
    listing = subprocess.run([sys.executable, "-m", "cli", "export", "--list", "--workspace", str(workspace.root)],
                             cwd=REPO, capture_output=True, text=True)
    assert "clinic-for-sharing" in listing.stdout and "complete" in listing.stdout


@pytest.mark.slow
def test_a_gguf_export_loads_back_with_the_same_top_tokens(tmp_path: Path, converted_default_model: Path):
    from peft import PeftModel
    from support import workspace_with_default_model
    from test_train import start_run, tiny_config, write_rows
    from transformers import AutoModelForCausalLM, AutoTokenizer

    workspace = workspace_with_default_model(tmp_path / "ws", converted_default_model)
    data = write_rows(tmp_path / "faq.jsonl", repeat=2)
    folder, _ = start_run(workspace, tiny_config(converted_default_model, data, "model.name=default", "train.max_steps=2",
                                                 "train.learning_rate=0.001", "lora.target_modules=[q_proj,v_proj]"))
    done = export(workspace, folder.run_id, "gguf-q8_0")
    gguf_file = done.gguf("q8_0")
    manifest = json.loads(done.manifest.read_text())
    assert manifest["files"] == [gguf_file.name, "Modelfile"] and manifest["verification"]["top_token_agreement"] >= 0.95
    assert not done.staging.exists() and not done.model.exists()
    modelfile = done.modelfile.read_text()
    assert f"FROM ./{gguf_file.name}" in modelfile and "<|im_start|>{{ .Role }}" in modelfile

    # Loaded back on its own, the GGUF picks the tuned model's next token almost everywhere.
    tokenizer = AutoTokenizer.from_pretrained(converted_default_model)
    text = tokenizer.apply_chat_template([{"role": "user", "content": "When do you open?"},
                                          {"role": "assistant", "content": "At eight in the morning, every weekday."}],
                                         tokenize=False)
    ids = tokenizer(text, return_tensors="pt")["input_ids"]
    tuned = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(converted_default_model), str(folder.adapter))
    loaded = AutoModelForCausalLM.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
    with torch.inference_mode():
        agree = (tuned(ids).logits.argmax(-1) == loaded(ids).logits.argmax(-1)).float().mean().item()
    assert agree >= 0.95
    assert "PARAMETER temperature 0.7" in modelfile


def test_the_model_card_takes_evaluation_and_rating_summaries(memorised_runs: MemorisedRuns):
    made_from = source.load(memorised_runs.workspace, memorised_runs.run_ids["garage"])
    facts = card.CardFacts("garage-merged", formats.get("merged"), made_from, {"max_abs_logit_diff": 1e-6}, ["model/"],
                           "2026-01-02T03:04:05+00:00")
    text = card.render(facts, evaluation={"BLEU": 31.25, "ROUGE-L": 0.4412},
                       ratings={"Fluency (1-4)": "3.4 ± 0.2", "Raters": 3})
    assert "- **BLEU:** 31.25" in text and "- **ROUGE-L:** 0.4412" in text
    assert "- **Fluency (1-4):** 3.4 ± 0.2" in text and "- **Raters:** 3" in text
    assert "Not evaluated yet" not in text and "Not rated yet" not in text
    assert text.startswith("---\nlibrary_name: transformers\n")
    assert card.without_front_matter(text).startswith("# garage — Merged model (safetensors)\n")
