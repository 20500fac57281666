"""Nothing is lost, whatever the file holds: property-based, over random mixes of good and broken lines."""

import json
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from tiny import build_tokenizer

from core.data import cleaning, lengths, store
from core.errors import DataError

COUNTER = lengths.TokenCounter(build_tokenizer())
TEXT = st.text(alphabet=st.sampled_from("abcxyz 诊所开门？?。.,，0123456789\t"), min_size=0, max_size=40)
GOOD = st.one_of(
    st.builds(lambda p, r: {"prompt": p, "response": r}, TEXT, TEXT),
    st.builds(lambda p, r: {"messages": [{"role": "user", "content": p}, {"role": "assistant", "content": r}]}, TEXT, TEXT),
    st.builds(lambda p, r: {"conversations": [{"from": "human", "value": p}, {"from": "gpt", "value": r}]}, TEXT, TEXT),
    st.builds(lambda i, o: {"instruction": i, "input": "", "output": o}, TEXT, TEXT),
).map(lambda record: json.dumps(record, ensure_ascii=False).encode())
BROKEN = st.one_of(
    st.just(b'{"prompt": "unfinished'),
    st.just(b'{"prompt": 7, "response": null}'),
    st.just(b'{"prompt": "q", "response": ["a"]}'),
    st.just(b'{"other": "keys"}'),
    st.just(b"[1, 2]"),
    st.just(b'{"prompt": "caf\xe9", "response": "x"}'),   # a stray Latin-1 byte
    st.binary(max_size=30).filter(lambda b: not {10, 13, 0} & set(b)),   # no line breaks, no NUL (a binary file)
)
BLANK = st.sampled_from([b"", b"  ", b"\t"])


@st.composite
def files(draw) -> list[bytes]:
    lines = draw(st.lists(st.one_of(GOOD, GOOD, BROKEN, BLANK), min_size=1, max_size=40))
    if lines and draw(st.booleans()):   # some exact copies of earlier lines
        lines += draw(st.lists(st.sampled_from(lines), max_size=10))
    lines.append(b'{"prompt": "anchor", "response": "always one readable row"}')
    return lines


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=files(), max_tokens=st.sampled_from([16, 40, 2048]))
def test_kept_plus_rejected_is_every_row_read(tmp_path: Path, lines: list[bytes], max_tokens: int):
    path = tmp_path / "random.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    try:
        parsed = store.read_file(path)
    except DataError:
        event("file refused as a whole")   # e.g. mostly not UTF-8: one message, no rows to account for
        return
    checked = store.check_file(path, parsed, cleaning.CleanOptions(max_tokens=max_tokens), COUNTER)
    numbered = {number for number, line in enumerate(lines, start=1) if line.strip()}
    kept = [row["source_line"] for row in checked.kept]
    rejected = [row["source_line"] for row in checked.rejects]
    assert checked.report.rows_read == len(numbered) == len(kept) + len(rejected)
    assert checked.report.kept == len(kept) and checked.report.rejected == len(rejected)
    assert set(kept) | set(rejected) == numbered and not set(kept) & set(rejected)
    assert all(row["reasons"] and len(row["details"]) >= len(row["reasons"]) for row in checked.rejects)
    assert sum((checked.report.reasons or {}).values()) >= len(rejected)
