"""The Data tab in Chinese: what its handlers show (upload report, rejects table, errors from reading a file)
comes out in the reader's language, with the values filled in; English stays as it was."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.data import formats, store
from core.errors import DataError
from core.workspace import Workspace
from studio.errors import in_reader_language
from studio.i18n import language
from studio.tabs import data

CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture
def uploaded(workspace: Workspace, tmp_path: Path):
    path = tmp_path / "faq.jsonl"
    path.write_text('{"prompt": "Hours?", "response": "9 to 5."}\n{"prompt": "broken"\n{"prompt": "Where?"}\n',
                    encoding="utf-8")
    created = store.import_upload(workspace, path)
    return store.read_report(workspace, created.dataset_id, 1), store.read_rejects(workspace, created.dataset_id, 1)


def in_chinese(make):
    token = language.set("zh-CN")
    try:
        return make()
    finally:
        language.reset(token)


def test_upload_report_and_rejects_in_chinese(uploaded):
    report, rejects = uploaded
    english = data.upload_markdown(report, rejects)
    assert english.startswith("### Read 3 rows from `faq.jsonl`") and "- line 2: invalid JSON at column" in english

    chinese = in_chinese(lambda: data.upload_markdown(report, rejects))
    assert CJK.search(chinese) and "从 `faq.jsonl` 读取了 3 行" in chinese
    assert "- 第 2 行：第 " in chinese and "列的 JSON 无效" in chinese          # a core detail, matched by its template
    assert "- 第 3 行：缺少字段 'response'" in chinese                         # a detail built from two templates

    table = in_chinese(lambda: data.rejects_table(rejects))
    assert list(table.columns) == ["行号", "原因", "详情", "剔除于", "提问 / 原文", "回答"]
    assert table["原因"].tolist() == ["无法读取", "无法读取"] and table["行号"].tolist() == [2, 3]
    assert list(data.rejects_table(rejects).columns) == data.REJECT_COLUMNS


def test_a_file_error_reads_in_chinese(tmp_path: Path):
    empty = tmp_path / "notes.jsonl"
    empty.write_bytes(b"")
    with pytest.raises(DataError) as caught:
        formats.read_upload(empty)
    assert in_reader_language(caught.value) == "notes.jsonl is empty (0 bytes). Pick the file that holds your data."
    assert in_chinese(lambda: in_reader_language(caught.value)) == "notes.jsonl 是空文件（0 字节）。 请选择存放数据的文件。"
