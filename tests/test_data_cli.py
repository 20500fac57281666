"""`lora-studio data check|clean`: the machine-readable report, the files `clean` writes, clear errors.
Run in-process through cli.main (the same entry point as the installed command, without paying
for a fresh interpreter and torch import per call)."""

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from cli import main as cli
from core.data.store import DEMO_DATASET_FILE

REQUIRED_REASONS = {"invalid", "duplicate", "near_duplicate", "contradiction", "low_quality", "too_long"}


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def data_cli(tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture):
    def run(*args: str) -> Done:
        code = cli.main(["data", *args, "--model", str(tiny_model_dir), "--workspace", str(tmp_path / "ws")])
        captured = capsys.readouterr()
        return Done(code, captured.out, captured.err)
    return run


def test_check_prints_the_json_report_and_writes_nothing(tmp_path: Path, data_cli):
    messy = tmp_path / "messy.jsonl"
    messy.write_bytes(DEMO_DATASET_FILE.read_bytes() + b"not json\n" + b'{"prompt": 1, "response": "x"}\n')
    done = data_cli("check", str(messy), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["rows_read"], report["kept"], report["rejected"]) == (351, 332, 19)
    assert REQUIRED_REASONS <= set(report["reasons"])
    assert report["reasons"]["invalid"] == 2 and report["reasons"]["duplicate"] == 10
    assert [group["source_lines"] for group in report["contradiction_groups"]] == [[44, 62], [50, 116], [156, 210]]
    assert {row["source_line"]: row["reasons"] for row in report["rejected_rows"]}[350] == ["invalid"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["messy.jsonl", "ws"]


def test_clean_writes_data_rejects_and_report(tmp_path: Path, data_cli):
    out = tmp_path / "out"
    done = data_cli("clean", str(DEMO_DATASET_FILE), "--out", str(out), "--json",
                    "--contradictions", "drop-all", "--max-tokens", "450")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    kept = [json.loads(line) for line in (out / "data.jsonl").read_text().splitlines()]
    rejects = [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]
    assert len(kept) == report["kept"] and len(rejects) == report["rejected"]
    assert report["kept"] + report["rejected"] == report["rows_read"] == 349
    assert report["reasons"]["contradiction"] == 6 and report["reasons"]["too_long"] > 0
    assert all(row["source_line"] and row["reasons"] for row in rejects)
    assert all(set(row) >= {"messages", "source_line"} for row in kept)
    assert json.loads((out / "report.json").read_text())["kept"] == report["kept"]


def test_human_summary_names_lines_and_reasons(tmp_path: Path, data_cli):
    done = data_cli("check", str(DEMO_DATASET_FILE), "--skip", "too_long")
    assert done.returncode == 0, done.stderr
    assert "349 rows read, 332 kept, 17 rejected" in done.stdout
    assert "line 84: low_quality: placeholder text ('TODO')" in done.stdout
    assert "contradiction c44: lines 44, 62 → keep-all" in done.stdout


def test_csv_columns_from_flags(tmp_path: Path, data_cli):
    table = tmp_path / "faq.csv"
    table.write_text("Frage,Antwort\nWann öffnen Sie?,Um acht Uhr.\n", encoding="utf-8")
    done = data_cli("check", str(table), "--json", "--prompt-column", "Frage",
                    "--response-column", "Antwort")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["kept"] == 1


def test_bad_input_gets_one_line_and_exit_2(tmp_path: Path, data_cli):
    utf16 = tmp_path / "data.jsonl"
    utf16.write_bytes('{"prompt": "q", "response": "a"}\n'.encode("utf-16"))
    for args in (("check", str(utf16)), ("check", str(tmp_path / "missing.jsonl")),
                 ("check", str(DEMO_DATASET_FILE), "--skip", "spelling"),
                 ("clean", str(DEMO_DATASET_FILE), "--out", str(tmp_path / "o"), "--contradictions", "maybe")):
        done = data_cli(*args)
        assert done.returncode == 2, (args, done.stderr)
        assert done.stdout == "" and done.stderr.startswith("error: ") and len(done.stderr.strip().splitlines()) == 1
