"""The dataset store on real files and real SQLite: raw uploads kept byte-for-byte, versions with lineage,
rejects that can be restored, leak-free splits, mixing — and no row ever lost."""

import hashlib
import json
import random
from contextlib import closing
from pathlib import Path

import pytest

from core.data import cleaning, formats, splits, store
from core.errors import DataError
from core.progress import Cancelled, Progress
from core.workspace import Workspace

MESSY = "\n".join([
    '{"prompt": "What are your opening hours?", "response": "Monday to Friday, 8:00 to 18:00."}',
    '{"prompt": "What are your opening hours?", "response": "Monday to Friday, 8:00 to 18:00."}',
    'this line is not JSON',
    '{"prompt": "诊所电话多少？", "response": "诊所总机是555-0142。预约请按1，药房请按2，收费咨询请按3。"}',
    '{"prompt": "诊所的电话是多少？", "response": "诊所总机是555-0124。预约请按1，药房请按2，收费咨询请按3。"}',
    '{"prompt": "Do you have parking?", "response": "TODO"}',
    '',
    '{"prompt": "Can I bring my dog?", "response": "Only assistance dogs are allowed inside the clinic."}',
]) + "\n"


def upload(workspace: Workspace, tmp_path: Path, text: str | bytes, file_name: str = "messy.jsonl", **kwargs):
    path = tmp_path / "upload.tmp"
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return store.import_upload(workspace, path, file_name=file_name, **kwargs)


def lines_of(rows) -> list[int]:
    return sorted(row["source_line"] for row in rows)


def test_upload_keeps_the_raw_bytes_and_every_row(workspace: Workspace, tmp_path: Path):
    v1 = upload(workspace, tmp_path, MESSY)
    folder = workspace.dataset_dir(v1.dataset_id)
    assert v1.dataset_id == "messy" and v1.version == 1 and v1.kind == "upload" and v1.parent is None
    assert (folder / "raw.jsonl").read_bytes() == MESSY.encode()
    rows, rejects = store.read_rows(workspace, "messy", 1), store.read_rejects(workspace, "messy", 1)
    assert lines_of(rows) == [1, 2, 4, 5, 6, 8]
    assert rejects == [{"source_line": 3, "reasons": ["invalid"], "details": ["invalid JSON at column 1: Expecting value"],
                        "text": "this line is not JSON", "version": 1}]
    report = store.read_report(workspace, "messy", 1)
    assert report.rows_read == 7 and report.kept + report.rejected == 7 and report.parent is None
    assert report.raw_sha256 == hashlib.sha256(MESSY.encode()).hexdigest()
    assert report.sha256 == hashlib.sha256((folder / "v1" / "data.jsonl").read_bytes()).hexdigest()
    assert [(d.id, d.latest_version, d.rows) for d in store.list_datasets(workspace)] == [("messy", 1, 6)]


def test_file_names_with_path_and_shell_characters_are_safe(workspace: Workspace, tmp_path: Path):
    v1 = upload(workspace, tmp_path, MESSY, file_name="../../etc/$(rm -rf ~);`x` data.jsonl")
    assert v1.dataset_id == "rm-rf-x-data"
    assert (workspace.dataset_dir(v1.dataset_id) / "raw.jsonl").is_file()
    assert sorted(p.name for p in workspace.datasets_dir.iterdir()) == [v1.dataset_id]
    again = upload(workspace, tmp_path, MESSY, file_name="../../etc/$(rm -rf ~);`x` data.jsonl")
    assert again.dataset_id == "rm-rf-x-data-2"


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("file_name, content", [
    ("array.jsonl", b'[{"prompt": "q", "response": "a"}]'),
    ("utf16.jsonl", '{"prompt": "q", "response": "a"}\n'.encode("utf-16")),
    ("empty.jsonl", b""),
    ("binary.jsonl", bytes(range(256))),
    ("columns.csv", b"question,reply\nq,a\n"),
    ("big.jsonl", b'{"prompt": "q", "response": "a"}\n' * 64),
])
def test_a_refused_upload_leaves_nothing_behind_and_touches_nothing(workspace: Workspace, tmp_path: Path, file_name, content):
    store.ensure_demo_dataset(workspace)
    before = snapshot(workspace.datasets_dir)
    with pytest.raises(DataError) as caught:
        mapping = formats.CsvMapping("question", "answer") if file_name.endswith(".csv") else None
        upload(workspace, tmp_path, content, file_name=file_name, mapping=mapping, max_bytes=1024)
    assert file_name in str(caught.value)
    assert snapshot(workspace.datasets_dir) == before
    assert [d.id for d in store.list_datasets(workspace)] == [store.DEMO_DATASET_ID]


def test_cleaning_reports_its_stages_and_a_cancelled_save_writes_nothing(workspace: Workspace, tmp_path: Path,
                                                                         tiny_model_dir: Path):
    upload(workspace, tmp_path, MESSY)
    heard: list[tuple[int, int, str]] = []
    store.check_version(workspace, "messy", 1, cleaning.CleanOptions(), model=str(tiny_model_dir),
                        progress=Progress(report=lambda done, total, what: heard.append((done, total, what))))
    assert heard == [(number, len(cleaning.STAGES), stage) for number, stage in enumerate(cleaning.STAGES)]

    before = sorted(path.name for path in workspace.dataset_dir("messy").iterdir())
    stop_after_counting = Progress(stop_requested=lambda: len(heard) > len(cleaning.STAGES) + 1,
                                   report=lambda done, total, what: heard.append((done, total, what)))
    with pytest.raises(Cancelled):
        store.clean_version(workspace, "messy", 1, cleaning.CleanOptions(), model=str(tiny_model_dir),
                            progress=stop_after_counting)
    assert sorted(path.name for path in workspace.dataset_dir("messy").iterdir()) == before
    assert not (workspace.dataset_dir("messy") / "v2").exists()


def test_cleaning_makes_a_new_version_with_lineage(workspace: Workspace, tmp_path: Path, tiny_model_dir: Path):
    upload(workspace, tmp_path, MESSY)
    options = cleaning.CleanOptions(resolutions={"c4": "keep:4"})
    preview = store.check_version(workspace, "messy", 1, options, model=str(tiny_model_dir))
    assert [g.source_lines for g in preview.contradiction_groups or []] == [[4, 5]]
    assert not (workspace.dataset_dir("messy") / "v2").exists()          # a check writes nothing

    v2 = store.clean_version(workspace, "messy", 1, options, model=str(tiny_model_dir))
    assert (v2.version, v2.parent, v2.kind, v2.rows, v2.rejected) == (2, 1, "clean", 3, 3)
    report = store.read_report(workspace, "messy", 2)
    folder = workspace.dataset_version_dir("messy", 2)
    assert report.parent == 1 and report.kind == "clean" and report.steps == list(cleaning.STEPS)
    assert report.parameters["resolutions"] == {"c4": "keep:4"} and report.parameters["model"] == str(tiny_model_dir)
    assert report.sha256 == hashlib.sha256((folder / "data.jsonl").read_bytes()).hexdigest()
    reasons = report.reasons or {}
    assert reasons["duplicate"] == reasons["contradiction"] == reasons["low_quality"] == 1
    assert report.lengths and report.lengths.measured == 3
    rejects = store.read_rejects(workspace, "messy", 2)
    assert {(r["source_line"], r["version"]) for r in rejects} == {(3, 1), (2, 2), (5, 2), (6, 2)}
    assert lines_of(store.read_rows(workspace, "messy", 2) + rejects) == [1, 2, 3, 4, 5, 6, 8]   # nothing lost
    assert [(v.version, v.parent, v.kind) for v in store.versions(workspace, "messy")] == [(1, None, "upload"), (2, 1, "clean")]
    assert store.load_conversations(folder / "data.jsonl")[0][0]["content"] == "What are your opening hours?"


def test_rejects_can_be_restored_into_the_next_version(workspace: Workspace, tmp_path: Path, tiny_model_dir: Path):
    upload(workspace, tmp_path, MESSY)
    store.clean_version(workspace, "messy", 1, cleaning.CleanOptions(), model=str(tiny_model_dir))
    v3 = store.restore_rejects(workspace, "messy", 2, [6])
    rows = store.read_rows(workspace, "messy", 3)
    assert (v3.parent, v3.kind, lines_of(rows)) == (2, "restore", [1, 4, 5, 6, 8])
    assert next(r for r in rows if r["source_line"] == 6)["restored"] is True
    assert lines_of(store.read_rejects(workspace, "messy", 3)) == [2, 3]
    v4 = store.clean_version(workspace, "messy", 3, cleaning.CleanOptions(), model=str(tiny_model_dir))
    assert 6 in lines_of(store.read_rows(workspace, "messy", v4.version))   # the user's decision stands
    with pytest.raises(DataError, match="could not be read from the file"):
        store.restore_rejects(workspace, "messy", 3, [3])
    with pytest.raises(DataError, match="not among the rejects"):
        store.restore_rejects(workspace, "messy", 3, [8])


WORDS = ("clinic hours parking bike lock refill pharmacy vaccine child fever insurance billing portal "
         "appointment referral nurse doctor x-ray blood test fasting privacy interpreter wheelchair lift visitor "
         "mask flu travel allergy dentist eye hearing diet sleep stress exercise smoking alcohol pregnancy baby").split()


def faq_rows(count: int) -> list[dict]:
    """`count` conversations whose prompts are all different (random words, repeatable)."""
    rows = []
    for n in range(count):
        prompt = " ".join(random.Random(n).sample(WORDS, 6)) + "?"
        rows.append({"messages": [{"role": "user", "content": prompt},
                                  {"role": "assistant", "content": f"Answer {n}."}], "source_line": n + 1})
    return rows


def test_split_keeps_near_duplicate_prompts_on_one_side():
    rows = faq_rows(200)
    for n in range(0, 40, 2):   # 20 pairs of near-identical prompts
        rows[n + 1]["messages"][0]["content"] = rows[n]["messages"][0]["content"] + "?"
    first = splits.split(rows, splits.prompts_of(rows), 0.2, seed=3)
    assert len(first.validation) == 40 and len(first.train) == 160 and first.leaks == 0 and first.kept_together == 40
    assert lines_of(first.train + first.validation) == list(range(1, 201))
    prompts = splits.prompts_of(rows)
    assert splits.split(rows, prompts, 0.2, seed=3) == first and splits.split(rows, prompts, 0.2, seed=4) != first
    assert splits.leaks(prompts[1::2], prompts[0::2], 0.6) >= 20   # the check does find leaks


def test_a_split_holds_out_at_least_one_row():
    rows = faq_rows(5)
    assert len(splits.split(rows, splits.prompts_of(rows), 0.02).validation) == 1   # 2% of 5 rounds to 0
    with pytest.raises(DataError, match="1 row\\(s\\) cannot be split"):
        splits.split(rows[:1], splits.prompts_of(rows[:1]), 0.5)


def test_split_and_mix_versions(workspace: Workspace, tmp_path: Path):
    base = upload(workspace, tmp_path, "\n".join(json.dumps({"prompt": m[0]["content"], "response": m[1]["content"]})
                                                 for m in (r["messages"] for r in faq_rows(100))), "base.jsonl")
    hard = upload(workspace, tmp_path, MESSY, "hard.jsonl")
    split = store.split_version(workspace, base.dataset_id, 1, 0.1, seed=1)
    folder = workspace.dataset_version_dir(base.dataset_id, split.version)
    assert (split.rows, split.validation_rows, split.kind) == (90, 10, "split")
    assert len(store.load_conversations(folder / "validation.jsonl")) == 10
    figures = store.read_report(workspace, base.dataset_id, split.version).split
    assert figures and (figures.train, figures.validation, figures.leaks) == (90, 10, 0)

    mixed = store.mix_versions(workspace, base.dataset_id, 1, hard.dataset_id, 1, (8, 2), seed=0)
    rows = store.read_rows(workspace, base.dataset_id, mixed.version)
    from_hard = [r for r in rows if r.get("source") == "hard/v1"]
    assert len(rows) == 125 and len(from_hard) == 25   # 100 : 25 is 8 : 2; 6 hard rows repeated to make 25
    assert {r["source_line"] for r in from_hard} == {1, 2, 4, 5, 6, 8}
    with pytest.raises(DataError, match="not a mixing ratio"):
        splits.parse_ratio("8-2")
    assert splits.parse_ratio(" 8 : 2 ") == (8, 2)


def test_versions_are_indexed_in_sqlite(workspace: Workspace, tmp_path: Path):
    upload(workspace, tmp_path, MESSY)
    store.split_version(workspace, "messy", 1, 0.5)
    with closing(workspace.connect()) as connection:
        rows = connection.execute("SELECT version, parent, kind, rows, validation_rows FROM dataset_versions"
                                  " WHERE dataset_id = 'messy' ORDER BY version").fetchall()
    assert [tuple(r) for r in rows] == [(1, None, "upload", 6, 0), (2, 1, "split", 3, 3)]


def test_hard_examples_accumulate_with_lineage_and_a_repeated_prompt_takes_the_newer_answer(workspace: Workspace):
    def asked(prompt: str, answer: str) -> list[dict[str, str]]:
        return [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]

    with pytest.raises(DataError, match="No examples"):
        store.add_hard_examples(workspace, [], {"run": "r1"})
    first = store.add_hard_examples(workspace, [asked("Open on Sunday?", "No."), asked("Parking?", "Yes, free.")],
                                    {"run": "r1", "eval": "e1"})
    second = store.add_hard_examples(workspace, [asked("Open on Sunday?", "No, Monday to Saturday only.")],
                                     {"rating_session": "s1"})
    assert (first.version, second.version, second.parent, second.rows) == (1, 2, 1, 2)
    rows = store.read_rows(workspace, store.HARD_EXAMPLES_ID, 2)
    answers = {row["messages"][0]["content"]: row["messages"][1]["content"] for row in rows}
    assert answers == {"Parking?": "Yes, free.", "Open on Sunday?": "No, Monday to Saturday only."}
    assert [row["source"] for row in rows] == [{"run": "r1", "eval": "e1"}, {"rating_session": "s1"}]
    replaced = store.read_rejects(workspace, store.HARD_EXAMPLES_ID, 2)   # nothing disappears silently
    assert [(row["messages"][1]["content"], row["reasons"]) for row in replaced] == [("No.", ["replaced"])]
    report = store.read_report(workspace, store.HARD_EXAMPLES_ID, 2)
    assert report.rows_read == report.kept + report.rejected == 3 and report.kind == "hard-examples"
    assert store.HARD_EXAMPLES_ID in {dataset.id for dataset in store.list_datasets(workspace)}


def test_a_full_disk_is_said_in_words_and_leaves_what_was_stored(workspace: Workspace, tmp_path: Path, monkeypatch,
                                                                 capsys: pytest.CaptureFixture[str]):
    import errno

    import gradio as gr

    from cli.main import main
    from studio.errors import friendly

    kept = upload(workspace, tmp_path, MESSY)
    before = store.read_rows(workspace, kept.dataset_id, 1)
    no_model_needed = cleaning.CleanOptions(steps=tuple(step for step in cleaning.STEPS if step != "too_long"))

    def full(path: Path, rows) -> str:   # the writer of every data file, on a disk with no space left
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(store, "_write_jsonl", full)
    with pytest.raises(gr.Error, match="the disk is full") as refused:   # what the Data tab shows
        friendly(upload)(workspace, tmp_path, MESSY, file_name="second.jsonl")
    assert str(tmp_path) not in str(refused.value)
    with pytest.raises(gr.Error, match="Free some space"):
        friendly(store.clean_version)(workspace, kept.dataset_id, 1, no_model_needed)
    assert [summary.id for summary in store.list_datasets(workspace)] == [kept.dataset_id]
    assert store.read_rows(workspace, kept.dataset_id, 1) == before
    assert sorted(path.name for path in workspace.dataset_dir(kept.dataset_id).iterdir()) == \
        ["dataset.json", "raw.jsonl", "v1"]   # no half-written version, no staging folder

    messy = tmp_path / "messy.jsonl"
    messy.write_text(MESSY, encoding="utf-8")
    code = main(["--workspace", str(workspace.root), "data", "clean", str(messy), "--out", str(tmp_path / "out"),
                 "--skip", "too_long"])
    assert code == 1 and "error: The command stopped: the disk is full." in capsys.readouterr().err
