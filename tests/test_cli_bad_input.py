"""Every CLI command given what does not exist or cannot work: one line starting 'error:' that names the
problem, exit code 1 or 2, never a traceback. Runs as a user would, in a subprocess."""

import subprocess
import sys

import pytest
from support import REPO

CASES = [
    ("train", "missing.yaml"),
    ("train", "--resume", "no-such-run", "--set", "train.learning_rate=1e-4"),
    ("estimate", "missing.yaml"),
    ("config", "--set", "lora.r=.nan"),
    ("config", "--set", "train.seed=1e40"),
    ("config", "--set", "no.such=field"),
    ("data", "check", "missing.jsonl"),
    ("data", "clean", "missing.csv", "--out", "cleaned"),
    ("eval", "no-such-run"),
    ("report", "no-such-run"),
    ("export", "no-such-run", "--format", "merged"),
    ("chat", "run:no-such-run"),
    ("serve", "no-such-run"),
    ("ratings", "report", "no-such-session"),
    ("ratings", "import", "no-such-session", "missing.csv"),
    ("ratings", "create", "Nothing", "--model", "base:no-such-model", "--prompts", "redteam"),
    ("users", "role", "nobody", "admin"),
    ("users", "remove", "nobody"),
    ("users", "passwd", "nobody", "--password-stdin"),
]


@pytest.mark.parametrize("arguments", CASES, ids=[" ".join(case[:2]) for case in CASES])
def test_a_command_given_what_cannot_work_says_so_in_one_line(arguments: tuple[str, ...], tmp_path):
    environment = {"PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "cli", *arguments], cwd=tmp_path, env=environment, input="",
                          capture_output=True, text=True, timeout=120)
    assert done.returncode in (1, 2), (done.returncode, done.stdout[-500:], done.stderr[-2000:])
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert "error:" in done.stderr.splitlines()[-1], done.stderr[-1000:]
