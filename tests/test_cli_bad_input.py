"""Every CLI command given what does not exist or cannot work: one line starting 'error:' that names the
problem, exit code 1 or 2, never a traceback (an exception escaping `main` fails the test)."""

import io

import pytest

from cli.main import main

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
def test_a_command_given_what_cannot_work_says_so_in_one_line(arguments: tuple[str, ...], tmp_path, monkeypatch,
                                                              capsys: pytest.CaptureFixture[str]):
    monkeypatch.chdir(tmp_path)   # relative paths and the default workspace land in the test's folder
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code = main(list(arguments))
    err = capsys.readouterr().err
    assert code in (1, 2), (code, err[-1000:])
    assert err.splitlines()[-1].startswith("error: "), err[-1000:]
