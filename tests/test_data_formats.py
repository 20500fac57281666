"""Reading uploads: every accepted format normalised to one conversation shape with line numbers, and
one clear message for each file that cannot be read at all."""

import json
from pathlib import Path

import pytest

from core.data import formats
from core.errors import DataError

USER_ASSISTANT = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]


def parse_text(text: str | bytes, name: str = "data.jsonl", mapping=None) -> formats.ParseResult:
    raw = text.encode("utf-8") if isinstance(text, str) else text
    return formats.parse(raw, name, mapping)


@pytest.mark.parametrize("record, expected", [
    ({"prompt": "q", "response": "a"}, USER_ASSISTANT),
    ({"question": "q", "answer": "a"}, USER_ASSISTANT),
    ({"prompt": "q", "completion": "a", "system": "s"}, [{"role": "system", "content": "s"}, *USER_ASSISTANT]),
    ({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"},
                   {"role": "assistant", "content": [{"type": "text", "text": "a"}]}]},
     [{"role": "system", "content": "s"}, *USER_ASSISTANT]),
    ({"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"},
                        {"from": "human", "value": "q2"}, {"from": "gpt", "value": "a2"}]},
     [*USER_ASSISTANT, {"role": "user", "content": "q2"}, {"role": "assistant", "content": "a2"}]),
    ({"instruction": "Translate", "input": "你好", "output": "Hello"},
     [{"role": "user", "content": "Translate\n\n你好"}, {"role": "assistant", "content": "Hello"}]),
    ({"instruction": "q", "input": "", "output": "a", "history": [["q0", "a0"]]},
     [{"role": "user", "content": "q0"}, {"role": "assistant", "content": "a0"}, *USER_ASSISTANT]),
])
def test_each_record_format_becomes_the_same_conversation_shape(record, expected):
    assert formats.conversation(record)[1] == expected


def test_bom_crlf_blank_lines_and_line_numbers():
    text = "\ufeff" + '{"prompt":"你好","response":"您好！"}\r\n\r\n\n{"prompt":"Hi","response":"Hello"}\r\n'
    parsed = parse_text(text)
    assert [row.source_line for row in parsed.rows] == [1, 4]
    assert parsed.rows[0].messages[0]["content"] == "你好"
    assert parsed.rows_read == 2 and parsed.record_formats == {"prompt_response": 2}


def test_malformed_lines_among_good_ones_are_reported_with_line_numbers_and_reasons():
    lines = [
        '{"prompt":"q","response":"a"}',
        '{"prompt": "q", "response": ',                      # 2 invalid JSON
        '{"prompt": 42, "response": "a"}',                    # 3 number where text is expected
        '{"prompt": "q", "response": null}',                  # 4 null
        '{"prompt": ["q"], "response": "a"}',                 # 5 list
        '{"prompt": "q"}',                                    # 6 missing field
        '{"prompt": "  ", "response": "a"}',                  # 7 empty prompt
        '{"text": "q"}',                                      # 8 unknown format
        '["q", "a"]',                                         # 9 not an object
        '{"messages": [{"role": "assistant", "content": "a"}]}',                              # 10 order
        '{"messages": [{"role": "user", "content": "q"}]}',                                   # 11 no answer
        '{"messages": [{"role": "tool", "content": "q"}, {"role": "assistant", "content": "a"}]}',  # 12 role
    ]
    parsed = parse_text("\n".join(lines))
    assert [row.source_line for row in parsed.rows] == [1]
    details = {row.source_line: row.detail for row in parsed.invalid}
    assert sorted(details) == list(range(2, 13))
    assert "invalid JSON" in details[2]
    assert "must be text, got a number (42)" in details[3]
    assert "got null" in details[4] and "got a list" in details[5]
    assert "missing field 'response'" in details[6]
    assert "prompt is empty" in details[7]
    assert "unknown format" in details[8] and "expected a JSON object" in details[9]
    assert "user, assistant" in details[10] and "last message" in details[11] and "unknown role" in details[12]
    assert parsed.invalid[0].text == lines[1]


def test_json_array_records_carry_the_line_they_start_on():
    text = '[\n  {"prompt": "q1", "response": "a1"},\n\n  {"prompt": "q2"},\n  {"prompt": "q3",\n   "response": "a3"}\n]'
    parsed = parse_text(text, "data.json")
    assert [row.source_line for row in parsed.rows] == [2, 5]
    assert [(row.source_line, row.detail) for row in parsed.invalid] == [(4, "missing field 'response'")]


def test_csv_with_mapping_quoted_newlines_and_short_rows():
    text = 'question,answer,note\r\n"What time?","Eight,\r\nsharp",x\r\n\r\nonly one field\r\n问题,回答,y\r\n'
    parsed = parse_text(text, "faq.csv", formats.CsvMapping("question", "answer"))
    assert [(row.source_line, row.messages[1]["content"]) for row in parsed.rows] == [(2, "Eight,\r\nsharp"), (6, "回答")]
    assert [row.source_line for row in parsed.invalid] == [5]
    assert formats.guess_mapping(["问题", "回答"]) == formats.CsvMapping("问题", "回答")
    assert formats.csv_columns(text.encode(), "faq.csv") == ["question", "answer", "note"]


def test_a_one_megabyte_line_is_read_as_data():
    big = "长" * 350_000  # about 1 MB of UTF-8
    parsed = parse_text(json.dumps({"prompt": "q", "response": big}, ensure_ascii=False))
    assert parsed.rows[0].messages[1]["content"] == big


def test_stray_non_utf8_bytes_cost_only_their_line():
    raw = b'{"prompt":"q","response":"a"}\n{"prompt":"caf\xe9","response":"a"}\n{"prompt":"q2","response":"a"}\n'
    parsed = formats.parse(raw, "data.jsonl")
    assert [row.source_line for row in parsed.rows] == [1, 3]
    assert parsed.invalid[0].source_line == 2 and "not UTF-8" in parsed.invalid[0].detail
    assert "\ufffd" in parsed.invalid[0].text


BAD_FILES = {
    "JSON array named .jsonl": ("data.jsonl", b'[{"prompt": "q", "response": "a"}]', "JSON array"),
    "pretty JSON array named .jsonl": ("data.jsonl", b'[\n {"prompt": "q", "response": "a"}\n]', "Rename it to .json"),
    "JSON Lines named .json": ("data.json", b'{"prompt": "q", "response": "a"}\n{"prompt": "q", "response": "a"}', ".jsonl"),
    "broken JSON": ("data.json", b'[{"prompt": "q", ]', "line 1, column"),
    "object holding the records": ("data.json", b'{"data": [{"prompt": "q", "response": "a"}]}', "under 'data'"),
    "UTF-16 with BOM": ("data.jsonl", '{"prompt": "q", "response": "a"}\n'.encode("utf-16"), "UTF-16"),
    "UTF-16 without BOM": ("data.jsonl", '{"prompt": "q", "response": "a"}\n'.encode("utf-16-le"), "UTF-16"),
    "GBK text": ("data.jsonl", '{"prompt": "你好", "response": "好"}\n'.encode("gbk") * 3, "GBK"),
    "binary": ("data.jsonl", bytes(range(256)) * 4, "binary"),
    "Excel workbook": ("data.jsonl", b"PK\x03\x04" + b"\x00" * 64, "ZIP"),
    "wrong extension": ("data.xlsx", b"a,b\n", "CSV UTF-8"),
    "no extension": ("data", b"{}", "no extension"),
    "blank lines only": ("data.jsonl", b"\n \r\n", "no records"),
    "CSV without the mapped columns": ("data.csv", b"prompt,reply\nq,a\n", "no column 'response'"),
    "CSV whose columns cannot be guessed": ("data.csv", b"left,right\nq,a\n", "--prompt-column"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_files_that_cannot_be_read_get_one_clear_message(case, tmp_path: Path):
    name, raw, expected = BAD_FILES[case]
    path = tmp_path / name
    path.write_bytes(raw)
    mapping = formats.CsvMapping("prompt", "response") if "mapped" in case else None
    with pytest.raises(DataError) as caught:
        formats.parse(formats.read_upload(path), name, mapping)
    message = str(caught.value)
    assert expected in message and name in message and "\n" not in message


def test_empty_and_oversized_files_are_refused_before_reading(tmp_path: Path):
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match="empty.jsonl is empty"):
        formats.read_upload(empty)
    big = tmp_path / "big.jsonl"
    big.write_bytes(b'{"prompt": "q", "response": "a"}\n' * 100)
    with pytest.raises(DataError, match=r"big.jsonl is 3.2 KB, over the 1,000 bytes upload limit"):
        formats.read_upload(big, max_bytes=1000)
