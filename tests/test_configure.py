"""The generated config form and named presets (no browser: the widgets are built in a Blocks context)."""

import gradio as gr
import pytest

from core import config
from core.data import store
from core.errors import ConfigError
from core.planning import presets
from core.workspace import Workspace
from studio.forms import ConfigForm, field_label
from studio.tabs.configure import dataset_choices, validation_file_of


@pytest.fixture(scope="module")
def form() -> ConfigForm:
    with gr.Blocks():
        return ConfigForm.build()


def test_every_config_field_has_exactly_one_widget(form: ConfigForm):
    assert [field.name for field in form.fields] == config.field_names()
    assert len({widget.elem_id for widget in form.components}) == len(form.components)
    learning_rate = next(f.widget for f in form.fields if f.name == "train.learning_rate")
    assert isinstance(learning_rate, gr.Number) and learning_rate.info == \
        config.TrainSection.model_fields["learning_rate"].description
    assert isinstance(next(f.widget for f in form.fields if f.name == "model.dtype"), gr.Dropdown)
    assert field_label("train.max_seq_length") == "Max length (tokens)" and field_label("lora.bias") == "Bias"


@pytest.mark.parametrize("preset", sorted(config.PRESETS))
def test_form_values_round_trip_every_preset(form: ConfigForm, preset: str):
    original = config.build(preset=preset)
    assert form.read(dict(zip(form.inputs, form.show(original)))) == original


def test_form_widget_values_are_validated_like_the_cli(form: ConfigForm):
    values = dict(zip(form.inputs, form.show(config.RunConfig())))
    assert set(values) >= {"model_name", "lora_r", "train_max_steps"}   # the API names gradio_client uses
    values["lora_target_modules"] = ["q_proj", "all-linear"]   # the keyword wins
    values["lora_r"] = 8.0                                     # gr.Number hands over floats
    values["data_validation_path"] = ""                         # empty text means "none"
    read = form.read(values)
    assert read.lora.target_modules == "all-linear" and read.lora.r == 8 and read.data.validation_path is None
    values["train_batch_size"] = 0
    with pytest.raises(ConfigError, match="train.batch_size"):
        form.read(values)


def test_built_in_presets_keep_what_is_trained(workspace: Workspace):
    current = config.build(overrides=["model.name=Qwen/Qwen2-7B-Instruct", "data.train_path=mine.jsonl", "name=faq"])
    seeded = presets.apply(current, "seed-recommendation", workspace)
    assert (seeded.lora.r, seeded.lora.alpha, seeded.lora.dropout, seeded.train.learning_rate, seeded.train.epochs) \
        == (32, 16, 0.1, 3e-4, 3)
    assert (seeded.model.name, seeded.data.train_path, seeded.name) == ("Qwen/Qwen2-7B-Instruct", "mine.jsonl", "faq")
    assert not presets.apply(seeded, "quick-demo-cpu", workspace).model.load_in_4bit
    labels = [label for label, _ in presets.choices(workspace)]
    assert labels[0] == "Quick demo (CPU)" and labels[1].startswith("Seed recommendation (r=32, alpha=16")


def test_saved_presets_come_back_exactly(workspace: Workspace):
    mine = config.build(preset="balanced", overrides=["lora.r=24", "name=clinic"])
    key = presets.save(workspace, "Clinic FAQ, r24", mine)
    assert key == "saved:clinic-faq-r24" and workspace.preset_path("clinic-faq-r24").is_file()
    assert ("Saved: clinic-faq-r24", key) in presets.choices(workspace)
    assert presets.apply(config.RunConfig(), key, workspace) == mine
    with pytest.raises(ConfigError, match="needs a name"):
        presets.save(workspace, "  ", mine)


def test_dataset_picker_lists_every_version_and_pairs_split_validation(workspace: Workspace):
    store.ensure_demo_dataset(workspace)
    split = store.split_version(workspace, store.DEMO_DATASET_ID, 1, validation_ratio=0.2)
    choices = dataset_choices(workspace)
    assert [label.split(" · ")[1] for label, _ in choices] == ["v2 (split)", "v1 (upload)"]
    split_file, upload_file = (path for _, path in choices)
    assert validation_file_of(split_file, workspace) == f"datasets/{store.DEMO_DATASET_ID}/v{split.version}/validation.jsonl"
    assert validation_file_of(upload_file, workspace) == ""
