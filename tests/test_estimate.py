"""The pre-flight estimate: exact counts against peft, memory against published 7B figures, offline."""

import json
import math
from pathlib import Path

import pytest
import torch
import yaml

from cli import main as cli
from core import config
from core.config import LoraSection
from core.data import store
from core.errors import ConfigError, ModelLoadError
from core.models import modeling
from core.planning import estimate, preflight
from core.runs import records
from core.training import trainset
from core.workspace import Workspace

DEEPSEEK = "deepseek-ai/deepseek-llm-7b-chat"
GB = 1e9

# Published parameter counts (model cards / hub "model size") of the shipped reference configs.
PUBLISHED_TOTALS = {
    DEEPSEEK: 6_910_365_696,
    "meta-llama/Llama-2-7b-chat-hf": 6_738_415_616,
    "meta-llama/Meta-Llama-3-8B-Instruct": 8_030_261_248,
    "mistralai/Mistral-7B-Instruct-v0.2": 7_241_732_096,
    "mistralai/Mistral-7B-Instruct-v0.3": 7_248_023_552,
    "Qwen/Qwen2-7B-Instruct": 7_615_616_512,
    "Qwen/Qwen2.5-7B-Instruct": 7_615_616_512,
    "Qwen/Qwen2.5-0.5B-Instruct": 494_032_768,
    "TinyLlama/TinyLlama-1.1B-Chat-v1.0": 1_100_048_384,
    "HuggingFaceTB/SmolLM2-135M-Instruct": 134_515_008,
}


def seed_lora() -> LoraSection:
    return LoraSection(r=32, alpha=16, dropout=0.1, target_modules=["q_proj", "v_proj"])


def test_deepseek_trainable_count_equals_peft_reference(workspace: Workspace):
    model = estimate.anatomy(DEEPSEEK, seed_lora(), workspace)
    assert model.config_source == "the shipped reference config"
    # peft's own count for this model: 2 matrices × r × (4096 + 4096) × 2 modules × 30 layers.
    assert model.trainable_params == 15_728_640 == 2 * 32 * (4096 + 4096) * 30
    assert model.total_params == PUBLISHED_TOTALS[DEEPSEEK]
    assert model.adapter_bytes > 4 * model.trainable_params   # fp32 tensors plus the header


def test_deepseek_memory_within_30_percent_of_published_7b_figures(workspace: Workspace):
    # LLaMA-Factory's hardware table (batch 1, gradient checkpointing on): 16 / 10 / 6 GB for 7B.
    model = estimate.anatomy(DEEPSEEK, seed_lora(), workspace)
    published = {"lora_16bit": 16 * GB, "qlora_8bit": 10 * GB, "qlora_4bit": 6 * GB}
    for precision, reference in published.items():
        total = estimate.memory(model, precision, batch_size=1, seq_len=512, gradient_checkpointing=True,
                                device_kind="GPU").total
        assert abs(total - reference) <= 0.3 * reference, (precision, total / GB)
    # Without checkpointing activations grow, but a 16-bit run at batch 1 stays in the published range.
    plain = estimate.memory(model, "lora_16bit", 1, 512, gradient_checkpointing=False, device_kind="GPU")
    assert plain.activations > 5 * estimate.memory(model, "lora_16bit", 1, 512, True, "GPU").activations
    assert abs(plain.total - 16 * GB) <= 0.3 * 16 * GB


def test_memory_grows_with_batch_and_length_and_shrinks_with_bits(workspace: Workspace):
    model = estimate.anatomy(DEEPSEEK, seed_lora(), workspace)
    small = estimate.memory(model, "lora_16bit", 1, 512, False, "GPU")
    assert estimate.memory(model, "lora_16bit", 4, 512, False, "GPU").activations == 4 * small.activations
    assert estimate.memory(model, "lora_16bit", 1, 2048, False, "GPU").total > small.total
    totals = [estimate.memory(model, p, 1, 512, False, "GPU").total
              for p in ("lora_32bit", "lora_16bit", "qlora_8bit", "qlora_4bit")]
    assert totals == sorted(totals, reverse=True)


def test_shipped_reference_configs_match_published_parameter_counts(workspace: Workspace):
    lora = LoraSection()
    for hub_id, published in PUBLISHED_TOTALS.items():
        assert estimate.reference_config_dir(hub_id) is not None, hub_id
        assert estimate.anatomy(hub_id, lora, workspace).total_params == published, hub_id
    assert estimate.reference_config_dir(DEEPSEEK.upper()) is not None   # hub ids are case-insensitive


@pytest.mark.parametrize("lora", [
    LoraSection(r=8, target_modules=["q_proj", "v_proj"]),
    LoraSection(r=4, target_modules="all-linear"),
    LoraSection(r=16, target_modules=["gate_proj", "down_proj"], use_rslora=True),
    LoraSection(r=8, target_modules=["q_proj", "k_proj", "o_proj"], use_dora=True),
], ids=["q_v", "all-linear", "mlp-rslora", "attention-dora"])
def test_counts_and_adapter_size_equal_peft_on_a_real_tiny_model(lora: LoraSection, tiny_model_dir: Path,
                                                                 workspace: Workspace, tmp_path: Path):
    from transformers import AutoModelForCausalLM

    predicted = estimate.anatomy(str(tiny_model_dir), lora, workspace)
    real = modeling.add_lora(AutoModelForCausalLM.from_pretrained(tiny_model_dir), lora)  # as training builds it
    trainable, everything = real.get_nb_trainable_parameters()
    assert predicted.trainable_params == trainable
    assert predicted.total_params + trainable == everything
    real.save_pretrained(tmp_path / "adapter")
    assert predicted.adapter_bytes == (tmp_path / "adapter" / "adapter_model.safetensors").stat().st_size


def test_unknown_models_and_layers_are_explained(workspace: Workspace, tiny_model_dir: Path):
    with pytest.raises(ModelLoadError, match="No architecture is known offline"):
        estimate.anatomy("someone/not-a-model", LoraSection(), workspace)
    with pytest.raises(ConfigError, match="lora.target_modules"):
        estimate.anatomy(str(tiny_model_dir), LoraSection(target_modules=["query_key_value"]), workspace)


def test_the_default_model_is_estimated_without_converting_it(workspace: Workspace):
    model = estimate.anatomy("default", LoraSection(), workspace)
    assert model.total_params == PUBLISHED_TOTALS["HuggingFaceTB/SmolLM2-135M-Instruct"]
    assert not any(workspace.models_dir.iterdir())


def test_verdict_thresholds():
    assert estimate.verdict(50, 100) == "fits"
    assert estimate.verdict(95, 100) == "tight"
    assert estimate.verdict(101, 100) == "won't fit"


def demo_config(workspace: Workspace, *overrides: str) -> config.RunConfig:
    store.ensure_demo_dataset(workspace)
    return config.build(None, "quick-demo-cpu", ["train.max_steps=-1", "train.epochs=2", *overrides])


def test_steps_follow_the_data_and_speed_comes_from_earlier_runs(workspace: Workspace):
    run_config = demo_config(workspace, "train.batch_size=4", "train.gradient_accumulation_steps=2")
    first = estimate.estimate(run_config, workspace)
    conversations = len(store.load_conversations(workspace.root / run_config.data.train_path))
    train = conversations - round(conversations * run_config.data.validation_ratio)   # 10% held out
    assert first.time is not None and first.time.train_samples == train
    assert first.time.steps == 2 * math.ceil(math.ceil(train / 4) / 2)   # 2 epochs of 4-row batches, 2 per step
    assert "no finished run" in first.time.basis

    # A finished run of the same model measured 123 tokens/s: the next estimate uses that speed.
    earlier = records.create(workspace, run_config)
    earlier.summary.write_text(json.dumps({"tokens_per_s": 123.0}))
    second = estimate.estimate(run_config, workspace)
    assert second.time is not None and second.time.tokens_per_s == pytest.approx(123.0)
    assert second.time.seconds == pytest.approx(first.time.seconds * first.time.tokens_per_s / 123.0, rel=0.05)
    assert "measured" in second.time.basis


def test_preflight_explains_invalid_combinations(workspace: Workspace):
    findings = preflight.check(demo_config(workspace), workspace).findings
    assert not [f for f in findings if f.level == "error"], findings

    too_long_config = demo_config(workspace, f"model.name={DEEPSEEK}", "train.max_seq_length=8192")
    too_long = preflight.check(too_long_config, workspace)
    assert any(f.field == "train.max_seq_length" and "4096" in f.message for f in too_long.findings)
    with pytest.raises(ConfigError, match="Cannot start: Max length 8192"):
        preflight.ensure_ready(too_long_config, workspace)
    wild_rate = preflight.check(demo_config(workspace, "train.learning_rate=0.05"), workspace)
    assert [f.level for f in wild_rate.findings if f.field == "train.learning_rate"] == ["warning"]
    missing = preflight.check(demo_config(workspace, "data.train_path=datasets/nope/v1/data.jsonl"), workspace)
    assert not missing.ok and any(f.field == "data.train_path" for f in missing.findings)
    unknown = preflight.check(demo_config(workspace, "model.name=someone/not-a-model"), workspace)
    assert unknown.estimate is None and unknown.findings[0].field == "model.name"
    if not torch.cuda.is_available():
        qlora = preflight.check(demo_config(workspace, "model.load_in_4bit=true"), workspace)
        assert any(f.field == "model.load_in_4bit" and "CUDA" in f.message for f in qlora.findings)
        half = preflight.check(demo_config(workspace, "train.precision=fp16"), workspace)
        assert [f.level for f in half.findings if f.field == "train.precision"] == ["error"]


def test_preflight_refuses_to_continue_from_a_run_that_is_gone(workspace: Workspace):
    gone = preflight.check(demo_config(workspace, "lora.init_from=deleted-run"), workspace)   # deleted since
    assert [f.level for f in gone.findings if f.field == "lora.init_from"] == ["error"]
    with pytest.raises(ConfigError, match="init_from='deleted-run' is neither a finished run"):
        preflight.ensure_ready(demo_config(workspace, "lora.init_from=deleted-run"), workspace)
    adapter = workspace.run_folder("kept-run").adapter
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text("{}")
    kept = preflight.check(demo_config(workspace, "lora.init_from=kept-run"), workspace)
    assert not [f for f in kept.findings if f.field == "lora.init_from"]


def test_cli_estimate_json_and_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    run_file = tmp_path / "run.yaml"
    run_file.write_text(yaml.safe_dump({"model": {"name": DEEPSEEK}, "lora": {"r": 32, "alpha": 16},
                                        "data": {"train_path": str(store.DEMO_DATASET_FILE)}}))
    workspace_args = ["--workspace", str(tmp_path / "ws")]
    assert cli.main(["estimate", str(run_file), *workspace_args, "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["trainable_params"] == 15_728_640 and figures["total_params"] == PUBLISHED_TOTALS[DEEPSEEK]
    assert figures["adapter_bytes"] > 0 and figures["verdict"] in ("fits", "tight", "won't fit")
    assert figures["qlora_4bit"] < figures["qlora_8bit"] < figures["lora_16bit"]
    assert figures["time"]["steps"] > 0 and figures["time"]["seconds"] > 0

    assert cli.main(["estimate", str(run_file), *workspace_args]) == 0
    assert "Trainable parameters      15,728,640" in capsys.readouterr().out
    assert cli.main(["estimate", *workspace_args, "--set", "lora.rank=4"]) == 2
    assert capsys.readouterr().err.startswith("error: Unknown config field 'lora.rank'")


def test_with_the_tokenizer_on_disk_the_estimate_sees_the_examples_training_builds(workspace: Workspace,
                                                                                    tiny_model_dir: Path):
    from transformers import AutoTokenizer

    run_config = demo_config(workspace, f"model.name={tiny_model_dir}", "train.max_seq_length=96",
                             "train.truncation=drop")
    timing = estimate.estimate(run_config, workspace).time
    built = trainset.build(run_config, AutoTokenizer.from_pretrained(tiny_model_dir), workspace)
    assert timing is not None and timing.train_samples == len(built.train) < 314   # long ones dropped, as training does
    mean = built.train_tokens / len(built.train)
    assert timing.train_tokens == round(timing.steps * run_config.train.batch_size * mean)


def test_a_shared_studio_reads_typed_paths_only_inside_its_workspace_and_allowed_folders(workspace: Workspace,
                                                                                         tmp_path: Path):
    allowed = tmp_path / "shared-data"
    allowed.mkdir()
    (allowed / "faq.jsonl").write_text('{"prompt": "Hours?", "response": "Eight to six."}\n')
    for path in ("/etc/passwd", "../../etc/passwd", str(tmp_path / "elsewhere.jsonl")):
        refused = preflight.check(demo_config(workspace, f"data.train_path={path}"), workspace, roots=[allowed])
        assert [f.field for f in refused.findings] == ["data.train_path"], path
        assert "outside the folders this studio may read" in refused.findings[0].message
        assert refused.estimate is None   # nothing was read from there
        local = preflight.check(demo_config(workspace, f"data.train_path={path}"), workspace)   # one local user
        assert not [f for f in local.findings if "outside" in f.message]   # the path is taken as given
    inside = preflight.check(demo_config(workspace), workspace, roots=[])
    assert not [f for f in inside.findings if "outside" in f.message]
    beside = preflight.check(demo_config(workspace, f"data.train_path={allowed / 'faq.jsonl'}"), workspace,
                             roots=[allowed])
    assert not [f for f in beside.findings if "outside" in f.message]
    folder_model = preflight.check(demo_config(workspace, f"model.name={tmp_path}"), workspace, roots=[allowed])
    assert [f.field for f in folder_model.findings] == ["model.name"]
