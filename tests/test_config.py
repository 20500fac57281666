from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from core import config
from core.errors import ConfigError

REQUIRED = ["model.name", "data.train_path", "data.validation_path", "lora.r", "lora.alpha", "lora.dropout",
            "lora.target_modules", "train.learning_rate", "train.epochs", "train.max_steps", "train.batch_size",
            "train.max_seq_length", "train.seed"]


def test_every_documented_field_has_a_stable_dotted_name_and_help():
    names = config.field_names()
    assert set(REQUIRED) <= set(names)
    for section in (config.ModelSection, config.DataSection, config.LoraSection, config.TrainSection,
                    config.GenerationSection):
        for field, info in section.model_fields.items():
            assert info.description and len(info.description) > 20, field


def test_overrides_are_read_as_yaml():
    built = config.build(overrides=["lora.target_modules=[q_proj,v_proj,o_proj]", "train.max_steps=-1",
                                    "train.learning_rate=1e-4", "model.name=/models/x", "lora.target_modules=all-linear"])
    assert built.lora.target_modules == "all-linear"
    assert built.train.max_steps == -1 and built.train.learning_rate == 1e-4
    assert config.build(overrides=["lora.target_modules=[q_proj,v_proj]"]).lora.target_modules == ["q_proj", "v_proj"]


def test_yaml_round_trip_and_precedence(tmp_path: Path):
    path = tmp_path / "run.yaml"
    path.write_text("lora:\n  r: 8\ntrain:\n  epochs: 2\n")
    built = config.build(path, preset="seed-recommendation", overrides=["train.epochs=5"])
    assert built.lora.r == 8            # file beats preset
    assert built.lora.alpha == 16       # preset beats default
    assert built.train.epochs == 5      # --set beats file
    again = tmp_path / "again.yaml"
    again.write_text(config.to_yaml(built))
    assert config.build(again) == built


@pytest.mark.parametrize("yaml_text, field, words", [
    ("lora:\n  rank: 8\n", "lora.rank", "Did you mean 'lora.r'"),
    ("lora:\n  r: 0\n", "lora.r", "≥ 1"),
    ("train:\n  learning_rate: -0.001\n", "train.learning_rate", "> 0"),
    ("train:\n  batch_size: many\n", "train.batch_size", "integer"),
    ("lora:\n  bias: some\n", "lora.bias", "'none'"),
    ("train:\n  max_steps: 0\n", "train.max_steps", "-1"),
])
def test_bad_values_name_the_field_and_the_allowed_range(tmp_path: Path, yaml_text: str, field: str, words: str):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError) as caught:
        config.build(path)
    message = str(caught.value)
    assert f"'{field}'" in message and words in message
    assert "\n" not in message


def test_broken_yaml_reports_the_line(tmp_path: Path):
    path = tmp_path / "broken.yaml"
    path.write_text("lora:\n  r: 8\n   alpha: [\n")
    with pytest.raises(ConfigError, match="line 3"):
        config.build(path)


def test_unknown_override_and_unknown_preset():
    with pytest.raises(ConfigError, match="Did you mean 'train.learning_rate'"):
        config.build(overrides=["train.learningrate=1"])
    with pytest.raises(ConfigError, match="Unknown preset"):
        config.build(preset="turbo")


def test_presets_are_valid_and_printable():
    for name in config.PRESETS:
        dumped = yaml.safe_load(config.to_yaml(config.build(preset=name)))
        assert dumped["lora"]["r"] >= 1
    assert config.build(preset="seed-recommendation").lora.r == 32


@settings(max_examples=200, deadline=None)
@given(text=st.text(min_size=1, max_size=40).filter(lambda value: "\n" not in value and "\r" not in value))
def test_set_keeps_any_text_of_a_text_field_as_written(text: str):
    for name in ("name", "data.system_prompt"):
        built = config.build(None, None, [f"{name}={text}"])
        value = built.name if name == "name" else built.data.system_prompt
        assert value == text


def test_set_reads_numbers_lists_and_null_where_the_field_wants_them():
    built = config.build(None, None, ["name=2024", "data.system_prompt=yes", "lora.r=8",
                                      "lora.target_modules=[q_proj,v_proj]", "data.validation_path=null"])
    assert (built.name, built.data.system_prompt, built.lora.r) == ("2024", "yes", 8)
    assert built.lora.target_modules == ["q_proj", "v_proj"] and built.data.validation_path is None


def test_nan_infinity_and_absurd_counts_are_refused_naming_the_field():
    import math

    defaults = config.RunConfig()
    data = defaults.model_dump(mode="json")
    numeric = [name for name, value in config.flat_values(defaults).items()
               if isinstance(value, int | float) and not isinstance(value, bool)]
    assert "train.learning_rate" in numeric and "train.seed" in numeric
    for name in numeric:
        for bad in (math.nan, math.inf, -math.inf):   # what an API client can send where a form has a number box
            with pytest.raises(ConfigError, match=f"'{name}'"):
                config.validate(config.with_value(data, name, bad))
    for name in ("train.max_steps", "train.seed", "train.eval_steps", "train.save_steps"):
        with pytest.raises(ConfigError, match=f"'{name}'.*must be ≤"):   # torch's seed and step counters overflow
            config.validate(config.with_value(data, name, 10**30))
