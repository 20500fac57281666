import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support import REPO
from test_config import REQUIRED


def run_cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_config_prints_every_default_and_applies_overrides():
    done = run_cli("config", "--preset", "quick-demo-cpu", "--set", "lora.target_modules=[q_proj,v_proj]",
                   "--set", "train.max_steps=-1")
    assert done.returncode == 0, done.stderr
    printed = yaml.safe_load(done.stdout)
    for name in REQUIRED:
        section, field = name.split(".")
        assert field in printed[section]
    assert printed["lora"]["target_modules"] == ["q_proj", "v_proj"] and printed["train"]["max_steps"] == -1


@pytest.mark.parametrize("yaml_text, field", [
    ("lora:\n  r: 0\n", "lora.r"),
    ("train:\n  learning_rate: -1\n", "train.learning_rate"),
    ("train:\n  epochs: three\n", "train.epochs"),
    ("lora:\n  rank: 4\n", "lora.rank"),
])
def test_bad_config_gets_one_line_and_exit_2(tmp_path: Path, yaml_text: str, field: str):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text)
    done = run_cli("config", str(path))
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and field in lines[0] and "Traceback" not in done.stderr


def test_doctor_reports_versions_hardware_and_workspace(tmp_path: Path):
    done = run_cli("doctor", "--workspace", str(tmp_path / "ws"))
    assert done.returncode == 0, done.stderr
    for label in ("torch", "transformers", "peft", "GPU", "bitsandbytes", "Workspace", "Default model", "RAM"):
        assert label in done.stdout
    assert str(tmp_path / "ws") in done.stdout and "PROBLEM" not in done.stdout


def test_usage_errors_exit_2_without_traceback():
    done = run_cli("config", "--preset", "nope")
    assert done.returncode == 2 and "Traceback" not in done.stderr and "invalid choice" in done.stderr


def test_core_never_imports_gradio():
    script = ("import importlib, pkgutil, sys, core\n"
              "for m in pkgutil.walk_packages(core.__path__, 'core.'): importlib.import_module(m.name)\n"
              "print(sorted(n for n in sys.modules if n.split('.')[0] == 'gradio'))")
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
