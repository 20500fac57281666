"""Cleaning steps on real text (Chinese and English), checked against the demo dataset's documented flaws."""

import numpy as np
import pytest
from datasketch import MinHash
from tiny import build_tokenizer

from core.data import cleaning, formats, lengths, pii, quality, similarity
from core.data.store import DEMO_DATASET_FILE
from core.errors import DataError


def conversation(prompt: str, response: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]


def rows_of(*pairs: tuple[str, str]) -> list[dict]:
    return [{"messages": conversation(p, r), "source_line": n} for n, (p, r) in enumerate(pairs, start=1)]


@pytest.fixture(scope="module")
def demo_rows() -> list[dict]:
    parsed = formats.parse(DEMO_DATASET_FILE.read_bytes(), DEMO_DATASET_FILE.name)
    return [{"messages": row.messages, "source_line": row.source_line} for row in parsed.rows]


@pytest.fixture(scope="module")
def counter() -> lengths.TokenCounter:
    return lengths.TokenCounter(build_tokenizer())


@pytest.fixture(scope="module")
def demo_result(demo_rows, counter) -> cleaning.CleanResult:
    return cleaning.clean(demo_rows, cleaning.CleanOptions(), counter)


def rejected(result: cleaning.CleanResult, reason: str) -> dict[int, str]:
    return {row["source_line"]: "; ".join(row["details"]) for row in result.rejected if reason in row["reasons"]}


# ---------------------------------------------------------------- the demo dataset's flaws (assets/demo/README.md)

def test_exact_duplicates_after_width_case_and_whitespace(demo_result):
    found = rejected(demo_result, "duplicate")
    assert found == {33: "same as line 21", 127: "same as line 56", 138: "same as line 66", 158: "same as line 93",
                     169: "same as line 77", 178: "same as line 121", 237: "same as line 131",
                     284: "same as line 167", 291: "same as line 273", 306: "same as line 228"}


def test_near_duplicates_in_chinese_and_english(demo_result):
    found = rejected(demo_result, "near_duplicate")
    assert found == {102: "near-duplicate of line 73", 199: "near-duplicate of line 190",
                     227: "near-duplicate of line 100", 320: "near-duplicate of line 248"}


def test_contradictions_are_grouped_and_kept_flagged_by_default(demo_result):
    assert [(g.id, g.source_lines, g.kept) for g in demo_result.groups] == [
        ("c44", [44, 62], [44, 62]), ("c50", [50, 116], [50, 116]), ("c156", [156, 210], [156, 210])]
    assert demo_result.reasons["contradiction"] == 0 and demo_result.flags["contradiction"] == 6
    flagged = {row["source_line"]: row["flags"]["contradiction"] for row in demo_result.kept
               if "contradiction" in row.get("flags", {})}
    assert flagged == {44: "c44", 62: "c44", 50: "c50", 116: "c50", 156: "c156", 210: "c156"}
    assert "555-0124" in demo_result.groups[2].rows[1].response


def test_low_quality_and_pii(demo_result):
    assert rejected(demo_result, "low_quality") == {31: "response repeats the prompt",
                                                    84: "placeholder text ('TODO')", 271: "empty response"}
    assert {row["source_line"]: row["flags"]["pii"] for row in demo_result.kept if "pii" in row.get("flags", {})} == {
        47: ["phone"], 259: ["email"]}


def test_nothing_else_is_touched_and_nothing_is_lost(demo_rows, demo_result):
    assert len(demo_result.kept) + len(demo_result.rejected) == len(demo_rows) == 349
    assert len(demo_result.rejected) == 17
    assert all(row["reasons"] and row["details"] and row["source_line"] for row in demo_result.rejected)


@pytest.mark.parametrize("choice, kept, rejected_lines", [
    ("keep-all", [44, 62], []), ("keep-first", [44], [62]), ("drop-all", [], [44, 62]), ("keep:62", [62], [44])])
def test_resolving_a_contradiction_group(demo_rows, choice, kept, rejected_lines):
    options = cleaning.CleanOptions(steps=("contradictions",), resolutions={"c44": choice})
    result = cleaning.clean(demo_rows, options)
    group = next(g for g in result.groups if g.id == "c44")
    assert group.kept == kept and group.resolution == choice
    assert sorted(rejected(result, "contradiction")) == rejected_lines
    assert result.reasons["contradiction"] == len(rejected_lines)


def test_an_impossible_resolution_is_refused(demo_rows):
    with pytest.raises(DataError, match="not a way to resolve contradiction group c44"):
        cleaning.clean(demo_rows, cleaning.CleanOptions(steps=("contradictions",), resolutions={"c44": "keep:45"}))
    with pytest.raises(DataError, match="Unknown cleaning step"):
        cleaning.CleanOptions(steps=("spelling",))


# ---------------------------------------------------------------- each step in both languages

def test_each_step_can_be_switched_off(demo_rows):
    result = cleaning.clean(demo_rows, cleaning.CleanOptions(steps=("near_duplicates",)))
    near = set(rejected(result, "near_duplicate"))
    assert {102, 199, 227, 320} < near and {33, 127, 291} < near   # exact duplicates are near ones too
    assert all(row["reasons"] == ["near_duplicate"] for row in result.rejected)
    untouched = cleaning.clean(demo_rows, cleaning.CleanOptions(steps=()))
    assert not untouched.rejected and untouched.kept == demo_rows


def test_width_and_case_duplicates_zh_en():
    rows = rows_of(("营业时间？", "周一至周五，8:00–18:00。"), ("营业时间?", "周一至周五,8:00–18:00."),
                   ("Opening HOURS?", "Mon-Fri  8-18."), ("opening hours?", "Mon-Fri 8-18."), ("Other?", "Yes it is."))
    result = cleaning.clean(rows, cleaning.CleanOptions(steps=("duplicates",)))
    assert rejected(result, "duplicate") == {2: "same as line 1", 4: "same as line 3"}


def test_near_duplicate_threshold_is_adjustable_and_numbers_matter():
    rows = rows_of(("Where can I park my bike?", "There are bike racks by the main entrance. Bring your own lock."),
                   ("Where do I leave my bicycle?", "There are bike racks next to the main entrance. Bring a lock."),
                   ("When does the clinic open?", "We open at 8:00 and close at 18:00 on weekdays."),
                   ("When is the clinic open?", "We open at 8:00 and close at 20:00 on weekdays."),
                   ("Can I bring my dog?", "Yes."), ("Is there parking?", "Yes."))
    default = cleaning.clean(rows, cleaning.CleanOptions(steps=("near_duplicates", "contradictions")))
    assert rejected(default, "near_duplicate") == {2: "near-duplicate of line 1"}   # not 4 (other hours), not 6
    assert [g.source_lines for g in default.groups] == [[3, 4]]
    strict = cleaning.clean(rows, cleaning.CleanOptions(steps=("near_duplicates",), near_duplicate_threshold=0.95))
    assert not strict.rejected


def test_a_shared_preamble_does_not_make_questions_the_same(demo_rows):
    preamble = "You are the front desk of Maple Grove Community Clinic. Answer briefly and politely. Question: "
    rows = [{**row, "messages": [{"role": "user", "content": preamble + row["messages"][0]["content"]},
                                 row["messages"][1]]} for row in demo_rows[:40]]
    only = cleaning.CleanOptions(steps=("contradictions",))
    assert cleaning.clean(rows, only).groups == []
    conflicting = [{"source_line": 1000 + n, "messages": conversation(preamble + prompt, answer)} for n, (prompt, answer)
                   in enumerate((("Where can I park my car?", "On Maple Grove Road, free for two hours."),
                                 ("Where can I park the car?", "Parking is not possible anywhere near the clinic.")))]
    assert [g.source_lines for g in cleaning.clean(rows + conflicting, only).groups] == [[1000, 1001]]


def test_low_quality_checks_zh_en():
    cases = {
        "empty response": ("你好吗？", "   "),
        "response shorter than 2 characters": ("Ready?", "Y"),
        "response repeats the prompt": ("诊所有没有自动取款机？", "诊所有没有自动取款机"),
        "runaway repetition": ("Why?", "I do not know. " * 10),
        "mojibake or control characters ('Ã©' in the assistant text)": ("Café?", "Le cafÃ© est ouvert."),
        "mojibake or control characters ('锟斤拷' in the assistant text)": ("乱码？", "锟斤拷锟斤拷"),
        "placeholder text ('待补充')": ("退款流程？", "待补充"),
        "placeholder text ('Lorem ipsum dolor sit amet')": ("Hours?", "Lorem ipsum dolor sit amet"),
    }
    for expected, (prompt, response) in cases.items():
        assert expected in quality.problems(conversation(prompt, response)), (prompt, response)
    for prompt, response in (("能借轮椅吗？", "可以。"), ("Hours?", "Mon–Fri 8:00–18:00."), ("Ok?", "Yes.")):
        assert quality.problems(conversation(prompt, response)) == []


def test_pii_kinds_and_masking_zh_en():
    text = ("请拨打 138 0013 8000 或 +86-13912345678，邮箱 wang.li@example.cn，身份证 11010519491231002X，"
            "call (415) 555-2671, see https://portal.example.com/r?token=abc123")
    assert pii.find(text) == {"phone", "email", "id_card", "url_token"}
    assert pii.mask(text) == ("请拨打 [PHONE] 或 [PHONE]，邮箱 [EMAIL]，身份证 [ID_NUMBER]，"
                              "call [PHONE], see [URL]")
    assert pii.find("Call 555-0142, order 20240101123456, in 2024, https://example.com/?page=2") == set()
    rows = rows_of(("My e-mail is a@b.org", "Thanks, noted."))
    masked = cleaning.clean(rows, cleaning.CleanOptions(steps=("pii",), mask_pii=True))
    assert masked.kept[0]["messages"][0]["content"] == "My e-mail is [EMAIL]" and masked.kept[0]["flags"] == {"pii": ["email"]}


def test_too_long_counts_tokens_with_the_chat_template(counter):
    rows = rows_of(("Short?", "Yes."), ("长问题" * 40, "长回答" * 40))
    exact = [counter.count(row["messages"]) for row in rows]
    assert all(counter.upper_bound(row["messages"]) >= count for row, count in zip(rows, exact))
    limit = exact[0] + 1
    result = cleaning.clean(rows, cleaning.CleanOptions(steps=("too_long",), max_tokens=limit), counter)
    assert rejected(result, "too_long") == {2: f"{exact[1]} tokens, over the limit of {limit}"}
    with pytest.raises(DataError, match="needs the model's tokenizer"):
        cleaning.clean(rows, cleaning.CleanOptions(steps=("too_long",)))


def test_the_token_bound_holds_and_batched_counts_are_trainings(demo_rows, counter):
    conversations = [row["messages"] for row in demo_rows[::7]]
    exact = [counter.count(messages) for messages in conversations]   # core.models.templates.tokenize_conversation
    assert all(counter.upper_bound(messages) >= tokens for messages, tokens in zip(conversations, exact))
    over, broken = counter.over_limit(conversations, 0)   # every row over the limit: all counted in one batch
    assert over == dict(enumerate(exact)) and broken == {}


def test_length_sample(demo_rows, counter):
    sample = lengths.length_sample(counter, [row["messages"] for row in demo_rows], size=50)
    assert sample.measured == 50 and sample.rows == 349 and sample.sampled
    assert len(sample.prompt_tokens) == len(sample.response_tokens) == 50 and min(sample.response_tokens) >= 0


def test_restored_rows_are_not_rejected_again(counter):
    rows = rows_of(("Hi?", "Hello."), ("Hi?", "Hello."))
    rows[1]["restored"] = True
    result = cleaning.clean(rows, cleaning.CleanOptions(), counter)
    assert not result.rejected


# ---------------------------------------------------------------- MinHash

def test_signatures_are_datasketch_minhashes():
    texts = ["", "ab", "hello world", similarity.comparable("诊所周一至周五早上八点开门。"), "the clinic " * 400]
    for text, signature in zip(texts, similarity.signatures(texts)):
        reference = MinHash(num_perm=similarity.NUM_PERM, seed=similarity.SEED, hashfunc=similarity.shingle_hash)
        reference.update_batch(similarity.shingles(text))
        assert np.array_equal(reference.hashvalues, signature), text


def test_candidate_pairs_find_similar_texts_among_many():
    base = [f"question number {n} about topic {n * 7919 % 1000}" for n in range(2000)]
    base[1500] = base[20] + "!"
    pairs = similarity.similar_pairs(similarity.signatures([similarity.comparable(t) for t in base]), 0.7)
    assert [20, 1500] in pairs.tolist()
    assert (pairs[:, 0] < pairs[:, 1]).all()
