"""Reading uploads: refuse files that cannot be read at all, parse the rest into conversations with line numbers.

Accepted files: `.jsonl` (one record per line), `.json` (an array of records), `.csv` (one row per record,
with a column mapping). Accepted records, normalised to the one internal conversation shape
`[{"role": "system"?}, {"role": "user"}, {"role": "assistant"}, ...]`:

    {"prompt": ..., "response": ...}            the primary format ("question"/"answer" and
                                                 "prompt"/"completion" are read the same way)
    {"messages": [{"role", "content"}, ...]}    OpenAI chat, multi-turn, optional system message
    {"conversations": [{"from", "value"}, ...]} ShareGPT
    {"instruction", "input"?, "output"}         Alpaca (optional "system" and "history")

Prompt sets (rating sessions) read the same files with `answer_required=False`: a record may then stop
at the user's turn ({"prompt": ...} alone, a message list ending with the user, a CSV without a
response column).

Text may be UTF-8 with or without BOM, CRLF line ends and blank lines. A record that cannot be read
becomes an InvalidRow with its line number and the reason, never an exception: only a file that cannot
be read at all (empty, binary, UTF-16, not UTF-8, over the size limit, wrong extension, a JSON array
named .jsonl, broken JSON in a .json file, a CSV without the mapped columns) raises DataError.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import DataError
from core.text import N_

Message = dict[str, str]

MAX_UPLOAD_BYTES = 512 * 1024 * 1024  # the studio's default upload limit (lora-studio ui --max-upload-mb)
SUFFIXES = {".jsonl": "jsonl", ".json": "json", ".csv": "csv"}
ROLES = ("system", "user", "assistant")
_PREVIEW_CHARS = 2000  # how much of an unreadable line a reject keeps for the user to see

# First bytes of common files that are not text, and what to say about them.
_MAGIC = {
    b"PK\x03\x04": N_("a ZIP archive (an Excel .xlsx or Word .docx file is one)"),
    b"\xd0\xcf\x11\xe0": N_("an old Office file (.xls or .doc)"),
    b"%PDF": N_("a PDF document"),
    b"\x89PNG": N_("a PNG image"),
    b"\xff\xd8\xff": N_("a JPEG image"),
    b"GIF8": N_("a GIF image"),
    b"\x1f\x8b": N_("a gzip archive"),
    b"PAR1": N_("a Parquet file"),
    b"SQLite format 3": N_("an SQLite database"),
    b"7z\xbc\xaf": N_("a 7-Zip archive"),
    b"Rar!": N_("a RAR archive"),
}
_SUFFIX_HINTS = {
    ".xlsx": N_("In Excel choose File → Save As → CSV UTF-8."),
    ".xls": N_("In Excel choose File → Save As → CSV UTF-8."),
    ".txt": N_("If it holds one JSON object per line, rename it to .jsonl."),
    ".tsv": N_("Save it as .csv (tab-separated CSV files are read too) or .jsonl."),
    ".parquet": N_("Export it to JSON Lines first, e.g. with pandas: df.to_json('data.jsonl', orient='records', "
                   "lines=True)."),
}
_SPEAKERS = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "chatgpt": "assistant",
             "bot": "assistant", "model": "assistant", "system": "system", "developer": "system"}
_PROMPT_KEYS = ("prompt", "question", "query")
_RESPONSE_KEYS = ("response", "answer", "completion")
_CSV_GUESSES = {
    "prompt": ("prompt", "question", "instruction", "query", "input", "user", "q", "问题", "提问", "指令", "输入"),
    "response": ("response", "answer", "output", "completion", "assistant", "reply", "a", "回答", "答案", "回复", "输出"),
    "system": ("system", "system_prompt", "系统", "系统提示"),
}
_JSON_SPACE = re.compile(r"[ \t\n\r]*")
_UNDECODABLE = re.compile(r"[\udc80-\udcff]")  # bytes that were not UTF-8, kept by surrogateescape

csv.field_size_limit(2**31 - 1)  # 1 MB cells are data, not an error; the upload size limit bounds them


@dataclass(frozen=True)
class Row:
    """One readable record: its 1-based line in the file (where the record starts) and its conversation."""

    source_line: int
    messages: list[Message]


@dataclass(frozen=True)
class InvalidRow:
    source_line: int
    detail: str   # what is wrong, in words
    text: str     # the record as it was in the file (shortened when huge)


@dataclass(frozen=True)
class CsvMapping:
    """Which CSV columns hold the prompt, the response and (optionally) a system message."""

    prompt: str
    response: str
    system: str | None = None


@dataclass
class ParseResult:
    file_format: str                                   # jsonl, json or csv
    rows: list[Row] = field(default_factory=list)
    invalid: list[InvalidRow] = field(default_factory=list)
    record_formats: dict[str, int] = field(default_factory=dict)  # e.g. {"openai": 10, "sharegpt": 2}

    @property
    def rows_read(self) -> int:
        return len(self.rows) + len(self.invalid)


# ---------------------------------------------------------------- whole-file checks

def file_format(name: str) -> str:
    """jsonl, json or csv from the file name; DataError for anything else."""
    suffix = Path(name).suffix.lower()
    if suffix not in SUFFIXES:
        kind = N_(f"is a {suffix} file") if suffix else N_("has no extension")
        raise DataError(f"{name} {kind}; LoRA Studio reads .jsonl, .json and .csv files.",
                        _SUFFIX_HINTS.get(suffix, N_("Save your data in one of those formats and upload it again.")))
    return SUFFIXES[suffix]


def read_upload(path: Path, max_bytes: int = MAX_UPLOAD_BYTES, name: str | None = None) -> bytes:
    """The file's bytes, after the checks that need nothing but the bytes: extension, size, not binary,
    not UTF-16. `name` is the name the user gave the file (uploads arrive under temporary names)."""
    name = name or Path(path).name
    file_format(name)
    try:
        size = Path(path).stat().st_size
    except FileNotFoundError:
        raise DataError(f"{name} does not exist.", "Check the path and try again.") from None
    if size == 0:
        raise DataError(f"{name} is empty (0 bytes).", "Pick the file that holds your data.")
    if size > max_bytes:
        raise DataError(f"{name} is {_human_size(size)}, over the {_human_size(max_bytes)} upload limit.",
                        "Split it into smaller files; they can be mixed into one dataset afterwards.")
    raw = Path(path).read_bytes()
    check_text(raw, name)
    return raw


def _human_size(size: float) -> str:
    for unit in ("bytes", "KB", "MB"):
        if size < 1024:
            return f"{size:,.0f} {unit}" if unit == "bytes" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{size:,.1f} GB"


def check_text(raw: bytes, name: str) -> None:
    """DataError when the bytes are not a text file we can read (binary, UTF-16/32)."""
    for magic, what in _MAGIC.items():
        if raw.startswith(magic):
            raise DataError(f"{name} is {what}, not a text file.",
                            "Export your data as .jsonl, .json or .csv (UTF-8) and upload that.")
    head = raw[:4096]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or _looks_utf16(head):
        raise DataError(f"{name} is saved as UTF-16 text.",
                        "Save it as UTF-8 (in Excel: CSV UTF-8; in Notepad: Save As → Encoding UTF-8) and upload again.")
    if b"\x00" in head:
        raise DataError(f"{name} is a binary file, not text.", "Upload a .jsonl, .json or .csv text file.")


def _looks_utf16(head: bytes) -> bool:
    """UTF-16 without BOM: ASCII text then has a NUL byte in every other position."""
    even, odd = head[0::2], head[1::2]
    return len(head) >= 8 and (odd.count(0) > 0.4 * len(odd) or even.count(0) > 0.4 * len(even))


def decode(raw: bytes, name: str) -> str:
    """UTF-8 text without BOM. Stray non-UTF-8 bytes stay in the text as lone surrogates so that only
    their lines are rejected; a file where most lines are not UTF-8 is refused as a whole."""
    text = raw.decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")
    if _UNDECODABLE.search(text) is None:
        return text
    lines = [line for line in text.split("\n") if line.strip()]
    bad = sum(1 for line in lines if _UNDECODABLE.search(line))
    if bad * 2 > len(lines):
        raise DataError(f"{name} is not UTF-8 text (it looks like {_guess_encoding(raw)}).",
                        "Save it as UTF-8 and upload again.")
    return text


def _guess_encoding(raw: bytes) -> str:
    try:
        text = raw.decode("gb18030")
    except UnicodeDecodeError:
        return N_("Windows-1252 or Latin-1")
    return N_("GBK/GB18030, common on Chinese Windows") if re.search(r"[\u4e00-\u9fff]", text) else \
        N_("Windows-1252 or Latin-1")


def _undecodable(text: str) -> str | None:
    found = _UNDECODABLE.search(text)
    return None if found is None else N_(f"bytes that are not UTF-8 at column {found.start() + 1} (save the file as UTF-8)")


def _shown(text: str) -> str:
    text = _UNDECODABLE.sub("\ufffd", text)
    return text if len(text) <= _PREVIEW_CHARS else text[:_PREVIEW_CHARS] + "…"


# ---------------------------------------------------------------- records → conversations

def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"{str(value).lower()}"
    if isinstance(value, (int, float)):
        return N_(f"a number ({value})")
    if isinstance(value, list):
        return N_("a list")
    if isinstance(value, dict):
        return N_("an object")
    return type(value).__name__


def _text(value: Any, what: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(p, dict) and isinstance(p.get("text"), str) for p in value):
        return "".join(part["text"] for part in value)  # OpenAI content parts [{"type": "text", "text": ...}]
    raise ValueError(N_(f"{what} must be text, got {_kind(value)}"))


def _field(record: dict, key: str) -> str:
    if key not in record:
        raise ValueError(N_(f"missing field '{key}'"))
    return _text(record[key], N_(f"field '{key}'"))


def _optional_system(record: dict) -> list[Message]:
    if record.get("system") in (None, ""):
        return []
    return [{"role": "system", "content": _text(record["system"], N_("field 'system'"))}]


def _messages_list(value: Any, field_name: str, role_key: str, content_key: str) -> list[Message]:
    if not isinstance(value, list):
        raise ValueError(N_(f"'{field_name}' must be a list of messages, got {_kind(value)}"))
    messages = []
    for number, item in enumerate(value, start=1):
        if not isinstance(item, dict):
            raise ValueError(N_(f"message {number} in '{field_name}' must be an object, got {_kind(item)}"))
        keys = (role_key, content_key) if role_key in item or content_key in item else ("role", "content")
        if keys[0] not in item or keys[1] not in item:
            raise ValueError(N_(f"message {number} in '{field_name}' needs '{role_key}' and '{content_key}'"))
        speaker = item[keys[0]]
        role = _SPEAKERS.get(speaker.lower()) if isinstance(speaker, str) else None
        if role is None:
            raise ValueError(N_(f"message {number} has an unknown role {json.dumps(speaker, ensure_ascii=False)}; "
                                "use system, user or assistant"))
        messages.append({"role": role, "content": _text(item[keys[1]], N_(f"the text of message {number}"))})
    return messages


def _alpaca(record: dict, answer_required: bool) -> list[Message]:
    messages = _optional_system(record)
    history = record.get("history") or []
    if not isinstance(history, list) or not all(
            isinstance(pair, list) and len(pair) == 2 and all(isinstance(t, str) for t in pair) for pair in history):
        raise ValueError(N_("'history' must be a list of [prompt, response] pairs of text"))
    for prompt, response in history:
        messages += [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]
    instruction = _field(record, "instruction")
    extra = _text(record.get("input") or "", N_("field 'input'"))
    prompt = f"{instruction}\n\n{extra}" if extra.strip() else instruction
    messages.append({"role": "user", "content": prompt})
    return messages + _answer(record, "output", answer_required)


def _prompt_response(record: dict, answer_required: bool) -> list[Message]:
    prompt_key = next((k for k in _PROMPT_KEYS if k in record), "prompt")
    response_key = next((k for k in _RESPONSE_KEYS if k in record), "response")
    return _optional_system(record) + [{"role": "user", "content": _field(record, prompt_key)},
                                       *_answer(record, response_key, answer_required)]


def _answer(record: dict, key: str, answer_required: bool) -> list[Message]:
    if key not in record and not answer_required:
        return []
    return [{"role": "assistant", "content": _field(record, key)}]


def record_format(record: dict) -> str:
    if "messages" in record:
        return "openai"
    if "conversations" in record:
        return "sharegpt"
    if "instruction" in record or "output" in record:
        return "alpaca"
    if any(k in record for k in _PROMPT_KEYS + _RESPONSE_KEYS):
        return "prompt_response"
    return "unknown"


def conversation(record: Any, answer_required: bool = True) -> tuple[str, list[Message]]:
    """(format name, messages) of one record; ValueError saying what is wrong when it cannot be read.
    Without `answer_required`, a record may end with the user's turn (a prompt with no answer yet)."""
    if not isinstance(record, dict):
        raise ValueError(N_(f"expected a JSON object, got {_kind(record)}"))
    kind = record_format(record)
    if kind == "openai":
        messages = _messages_list(record["messages"], "messages", "role", "content")
    elif kind == "sharegpt":
        messages = _optional_system(record) + _messages_list(record["conversations"], "conversations", "from", "value")
    elif kind == "alpaca":
        messages = _alpaca(record, answer_required)
    elif kind == "prompt_response":
        messages = _prompt_response(record, answer_required)
    else:
        keys = ", ".join(sorted(map(str, record))) or "none"
        raise ValueError(N_(f"unknown format (keys: {keys}); expected prompt/response, messages, conversations "
                            "or instruction/output"))
    check_turns(messages, answer_required)
    return kind, messages


def check_turns(messages: list[Message], answer_required: bool = True) -> None:
    """An optional system message, then user and assistant taking turns, ending with the assistant's
    answer (the layout chat templates expect and training learns from) or, without `answer_required`,
    with either; user turns must not be empty."""
    offset = 1 if messages and messages[0]["role"] == "system" else 0
    turns = messages[offset:]
    if not turns:
        raise ValueError(N_("the conversation has no user or assistant message"))
    for position, message in enumerate(turns):
        number, expected = offset + position + 1, ("user", "assistant")[position % 2]
        if message["role"] != expected:
            where = N_("allowed only first") if message["role"] == "system" else N_(f"{expected} expected")
            raise ValueError(N_(f"message {number} is from {message['role']} ({where}); "
                                "messages must go user, assistant, user, assistant…"))
        if expected == "user" and not message["content"].strip():
            raise ValueError(N_("the prompt is empty") if len(turns) == 2 else N_(f"message {number} (user) is empty"))
    if answer_required and turns[-1]["role"] != "assistant":
        raise ValueError(N_("the last message must be the assistant's answer"))


def text_of(messages: list[Message], role: str) -> str:
    """All `role` messages of a conversation as one text ("user": the prompt, "assistant": the answer)."""
    return "\n".join(message["content"] for message in messages if message["role"] == role)


# ---------------------------------------------------------------- files → rows

def parse(raw: bytes, name: str, mapping: CsvMapping | None = None, answer_required: bool = True) -> ParseResult:
    """Every record of a file as a Row or an InvalidRow (kept + invalid = records read). Without
    `answer_required` (prompt sets), records may stop at the user's turn."""
    kind = file_format(name)
    text = decode(raw, name)
    result = ParseResult(kind)
    if kind == "csv":
        records = _csv_records(text, name, mapping, answer_required)
    elif kind == "json":
        records = _json_array_records(text, name)
    else:
        records = _jsonl_records(text, name)
    for line, record, source in records:
        problem = _undecodable(source)
        if problem is None and isinstance(record, ValueError):
            problem = str(record)
        if problem is None:
            try:
                record_kind, messages = conversation(record, answer_required)
            except ValueError as error:
                problem = str(error)
            else:
                result.rows.append(Row(line, messages))
                result.record_formats[record_kind] = result.record_formats.get(record_kind, 0) + 1
                continue
        result.invalid.append(InvalidRow(line, problem, _shown(source)))
    if not result.rows_read:
        raise DataError(f"{name} holds no records, only blank lines or a header.", "Pick the file that holds your data.")
    return result


Record = tuple[int, Any, str]  # (line, parsed record or the ValueError that stopped it, source text)


def _jsonl_records(text: str, name: str) -> Iterator[Record]:
    lines = text.split("\n")
    first = next((line.strip() for line in lines if line.strip()), "")
    if first.startswith("[") and _is_json_array_file(text, first):
        raise DataError(f"{name} holds one JSON array, not one JSON object per line.",
                        "Rename it to .json (arrays are read from .json files) or write one object per line.")
    for number, line in enumerate(lines, start=1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        try:
            yield number, json.loads(line), line
        except json.JSONDecodeError as error:
            yield number, ValueError(N_(f"invalid JSON at column {error.colno}: {error.msg}")), line


def _is_json_array_file(text: str, first_line: str) -> bool:
    try:
        json.loads(first_line)
    except json.JSONDecodeError:
        return True  # a pretty-printed array: its first line is "[" or an unfinished element
    try:
        return isinstance(json.loads(text), list)
    except json.JSONDecodeError:
        return False


def _after_space(text: str, position: int) -> int:
    """The position of the first character at or after `position` that is not JSON whitespace."""
    match = _JSON_SPACE.match(text, position)
    assert match is not None  # the pattern also matches the empty string
    return match.end()


def _json_array_records(text: str, name: str) -> Iterator[Record]:
    """The elements of a top-level JSON array, each with the line it starts on."""
    decoder = json.JSONDecoder()
    position = _after_space(text, 0)
    if not text.startswith("[", position):
        yield from _json_single_record(text, name)
        return
    line, counted = 1, 0
    position = _after_space(text, position + 1)
    closed = text.startswith("]", position)
    while not closed:
        try:
            value, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError as error:
            raise _broken_json(name, error) from None
        line += text.count("\n", counted, position)
        counted = position
        yield line, value, text[position:end]
        position = _after_space(text, end)
        if text.startswith(",", position):
            position = _after_space(text, position + 1)
        elif text.startswith("]", position):
            closed = True
        else:
            raise _broken_json(name, json.JSONDecodeError("Expected ',' or ']' after an element", text, position))
    if text[position + 1:].strip():
        raise _broken_json(name, json.JSONDecodeError("Extra data after the array", text, position + 1))


def _json_single_record(text: str, name: str) -> Iterator[Record]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        if error.msg == "Extra data":
            raise DataError(f"{name} holds JSON Lines (one object per line), not one JSON document.",
                            "Rename it to .jsonl and upload again.") from None
        raise _broken_json(name, error) from None
    if isinstance(value, dict) and record_format(value) != "unknown":
        yield 1, value, text.strip()
        return
    inner = [key for key, item in value.items() if isinstance(item, list)] if isinstance(value, dict) else []
    raise DataError(f"{name} does not hold a JSON array of records (it holds {_kind(value)}).",
                    f"Save the records as a JSON array [{{...}}, {{...}}] or as .jsonl. The records seem to be under "
                    f"'{inner[0]}': save that list on its own." if len(inner) == 1 else
                    "Save the records as a JSON array [{...}, {...}] or as .jsonl.")


def _broken_json(name: str, error: json.JSONDecodeError) -> DataError:
    return DataError(f"{name} is not valid JSON: line {error.lineno}, column {error.colno}: {error.msg}.",
                     "Fix that spot, or save one record per line as .jsonl so that a broken line costs only that line.")


def csv_columns(raw: bytes, name: str) -> list[str]:
    """The header of a CSV file (for the column-mapping step)."""
    text = decode(raw, name)
    return _csv_header(csv.reader(io.StringIO(text, newline=""), _dialect(text)), name)


def _csv_header(reader: Any, name: str) -> list[str]:
    try:
        header = next((row for row in reader if any(cell.strip() for cell in row)), None)
    except csv.Error as error:
        raise DataError(f"{name} cannot be read as CSV: {error}.", "Save it again as CSV UTF-8, or as .jsonl.") from None
    if not header:
        raise DataError(f"{name} has no header row.", "Put the column names (e.g. prompt,response) on the first line.")
    return [column.strip() for column in header]


def guess_mapping(columns: list[str], answer_required: bool = True) -> CsvMapping | None:
    """A mapping from common column names (prompt/question/instruction…, response/answer/output…); without
    `answer_required`, a prompt column alone will do (its response column is then '')."""
    lowered = {column.lower(): column for column in columns}

    def pick(role: str) -> str | None:
        return next((lowered[g] for g in _CSV_GUESSES[role] if g in lowered), None)

    prompt, response = pick("prompt"), pick("response")
    if response is None and not answer_required:
        response = ""
    if prompt is None or response is None or prompt == response:
        return None
    return CsvMapping(prompt, response, pick("system"))


def _dialect(text: str) -> type[csv.Dialect]:
    try:
        return csv.Sniffer().sniff(text[:65536], delimiters=",;\t|")
    except csv.Error:
        return csv.excel


def _csv_records(text: str, name: str, mapping: CsvMapping | None, answer_required: bool = True) -> Iterator[Record]:
    reader = csv.reader(io.StringIO(text, newline=""), _dialect(text))
    columns = _csv_header(reader, name)
    mapping = mapping or guess_mapping(columns, answer_required)
    if mapping is None:
        raise DataError(f"{name}: cannot tell which columns hold the prompt and the response "
                        f"(columns: {', '.join(columns)}).", "Choose the prompt and response columns (CLI: "
                        "--prompt-column and --response-column).")
    wanted = {"prompt": mapping.prompt, "response": mapping.response, "system": mapping.system}
    missing = [column for column in wanted.values() if column and column not in columns]
    if missing:
        raise DataError(f"{name} has no column {', '.join(repr(m) for m in missing)}; its columns are: "
                        f"{', '.join(columns)}.", "Pick the columns that hold the prompt and the response.")
    index = {role: columns.index(column) for role, column in wanted.items() if column}
    previous_end = reader.line_num
    try:
        for fields in reader:
            start, previous_end = previous_end + 1, reader.line_num
            if not any(cell.strip() for cell in fields):
                continue
            source = ",".join(fields)
            if len(fields) != len(columns):
                yield start, ValueError(N_(f"has {len(fields)} fields but the header has {len(columns)} "
                                           "(a comma or quote inside a cell?)")), source
                continue
            yield start, {role: fields[i] for role, i in index.items()}, source
    except csv.Error as error:
        raise DataError(f"{name} cannot be read as CSV after line {reader.line_num}: {error}.",
                        "Check the quoting around that line, or save the data as .jsonl.") from None
