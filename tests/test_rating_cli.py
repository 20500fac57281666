"""`lora-studio ratings …` as a user runs it: create (generating in the foreground), import ratings made in a
spreadsheet, report with alpha, export, hard examples, preference pairs; bad input gets one line and exit 2."""

import csv
import json
from pathlib import Path

import pytest
from test_cli import run_cli
from tiny import build_tiny_model

from core.workspace import Workspace


@pytest.fixture(scope="module")
def workspace_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workspace = Workspace.open(tmp_path_factory.mktemp("cli") / "ws")
    build_tiny_model(workspace.model_dir("tiny-a"), seed=1)
    build_tiny_model(workspace.model_dir("tiny-b"), seed=2)
    return workspace.root


def ratings_cli(workspace_dir: Path, *args: str):
    return run_cli("ratings", *args, "--workspace", str(workspace_dir))


def test_create_import_report_export_and_feed_back(workspace_dir: Path, tmp_path: Path):
    done = ratings_cli(workspace_dir, "create", "CLI session", "--model", "base:tiny-a", "--model", "base:tiny-b",
                       "--prompts", "redteam", "--max-prompts", "2", "--max-new-tokens", "5", "--overlap", "2")
    assert done.returncode == 0, done.stderr
    session_id = done.stdout.strip().splitlines()[-1]
    assert session_id == "cli-session" and "[4/4]" in done.stdout and "ready to rate" in done.stdout
    assert "cli-session" in ratings_cli(workspace_dir, "list").stdout

    # Two raters' ratings made in a spreadsheet, with a corrected answer for one poor response.
    sheet = tmp_path / "sheet.csv"
    with sheet.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["item", "rater", "criterion", "value"])
        for item in range(1, 5):
            for rater, fluency in (("Ana", "4" if item % 2 else "1"), ("Ben", "4" if item % 2 else "2")):
                writer.writerows([[item, rater, "fluency", fluency], [item, rater, "relevance", "3"],
                                  [item, rater, "safety", "safe"]])
        writer.writerow([2, "Ana", "corrected_answer", "周一至周五早上八点开门。"])
    done = ratings_cli(workspace_dir, "import", session_id, str(sheet))
    assert done.returncode == 0 and "25 ratings added or updated" in done.stdout, done.stderr

    report = json.loads(ratings_cli(workspace_dir, "report", session_id, "--json").stdout)
    assert set(report["alpha"]) == {"fluency", "relevance", "safety"} and report["alpha"]["fluency"] > 0.8
    assert {row["criterion"] for row in report["scores"]} == {"fluency", "relevance"}
    assert all(row["mean"]["low"] is not None for row in report["scores"] if row["criterion"] == "fluency")
    text = ratings_cli(workspace_dir, "report", session_id).stdout
    assert "agreement on fluency: α = " in text and "κ Ana–Ben" in text

    out = tmp_path / "all.jsonl"
    assert ratings_cli(workspace_dir, "export", session_id, "--out", str(out)).returncode == 0
    exported = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(exported) == 25 and {row["model"] for row in exported} == {"base:tiny-a", "base:tiny-b"}

    done = ratings_cli(workspace_dir, "hard-examples", session_id)
    assert done.returncode == 0 and "Hard examples v1: 1 rows" in done.stdout, done.stderr

    pairwise = ratings_cli(workspace_dir, "create", "CLI pairs", "--model", "base:tiny-a", "--model", "base:tiny-b",
                           "--prompts", f"session:{session_id}", "--mode", "pairwise")
    assert pairwise.returncode == 0 and "[" not in pairwise.stdout   # reused responses: nothing generated
    pair_sheet = tmp_path / "pairs.jsonl"
    pair_sheet.write_text("".join(json.dumps({"item": n, "rater": "Ana", "criterion": "preference", "value": "A"}) + "\n"
                                  for n in (1, 2)))
    assert ratings_cli(workspace_dir, "import", "cli-pairs", str(pair_sheet)).returncode == 0
    done = ratings_cli(workspace_dir, "pairs", "cli-pairs", "--out", str(tmp_path / "dpo.jsonl"))
    assert done.returncode == 0 and "2 preference pairs" in done.stdout
    assert set(json.loads((tmp_path / "dpo.jsonl").read_text().splitlines()[0])) == {"prompt", "chosen", "rejected"}


@pytest.mark.parametrize("args, words", [
    (("create", "x", "--model", "run:nope"), "Run 'nope' has no adapter yet"),
    (("create", "x", "--model", "base:tiny-a", "--prompts", "dataset:nope"), "no dataset 'nope'"),
    (("create", "x", "--model", "base:tiny-a", "--criteria", "fluency,kindness"), "Unknown criterion 'kindness'"),
    (("create", "x", "--model", "base:tiny-a", "--mode", "pairwise"), "needs two or more models"),
    (("report", "nope"), "There is no rating session 'nope'"),
    (("import", "nope", "missing.csv"), "There is no rating session 'nope'"),
    (("hard-examples", "nope", "--items", "a,b"), "is not a list of item numbers"),
])
def test_bad_input_gets_one_line_and_exit_2(workspace_dir: Path, args, words: str):
    done = ratings_cli(workspace_dir, *args)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and words in lines[0] and lines[0].startswith("error: "), done.stderr
