"""The studio in two languages: every English text of the interface has its Chinese, with the same
placeholders and no English words left in it; messages made with values are translated whole; the language
comes from the switch's cookie, else from the browser."""

import gradio as gr
import pytest

from studio import i18n, i18n_audit


@pytest.fixture(scope="module")
def texts() -> dict[str, str]:
    return i18n_audit.all_texts()


def test_every_text_of_the_interface_has_its_chinese(texts: dict[str, str]):
    found = i18n_audit.problems("zh-CN", texts)
    missing = {text: texts[text] for text in found["missing"]}
    assert missing == {}, f"{len(missing)} texts lack Chinese: run `python -m studio.i18n_audit`"
    assert found["placeholders"] == []
    english_left = {text: i18n_audit.english_words(i18n.catalog("zh-CN")[text]) for text in found["english"]}
    assert english_left == {}


def test_the_audit_finds_texts_in_every_kind_of_place(texts: dict[str, str]):
    # A static label, a tr() text, an error raised in core with values (as a template), a glossary entry.
    assert "Data" in texts and "Evaluate" in texts
    assert "Something unexpected went wrong ({error}). The details are in the studio's log." in texts
    assert "Dataset '{dataset_id}' has no version {version}." in texts
    assert "Overfitting" in texts


def test_a_core_message_with_values_is_translated_whole_and_its_values_kept():
    english = "Dataset 'faq' has no version 7."
    chinese = i18n.translate(english, "zh-CN")
    assert "faq" in chinese and "7" in chinese and i18n_audit.english_words(chinese) == ["faq"]   # the name stays
    assert i18n.translate(english, "en") == english
    assert i18n.translate("a text nobody catalogued", "zh-CN") == "a text nobody catalogued"


def test_tr_follows_the_language_of_the_request_being_handled():
    token = i18n.language.set("zh-CN")
    try:
        assert i18n.tr("Evaluate") == i18n.catalog("zh-CN")["Evaluate"]
    finally:
        i18n.language.reset(token)
    assert i18n.tr("Evaluate") == "Evaluate"


@pytest.mark.parametrize(("headers", "expected"), [
    ({"accept-language": "zh-CN,zh;q=0.9,en;q=0.8"}, "zh-CN"),
    ({"accept-language": "zh-TW"}, "zh-CN"),
    ({"accept-language": "de-DE,en;q=0.5"}, "en"),
    ({"accept-language": "fr"}, "en"),
    ({}, "en"),
    ({"accept-language": "zh-CN", "cookie": "lora_studio_lang=en"}, "en"),   # the switch wins over the browser
    ({"cookie": "other=1; lora_studio_lang=zh-CN"}, "zh-CN"),
    ({"cookie": "lora_studio_lang=klingon", "accept-language": "en"}, "en"),
    ({"cookie": "\x00broken;;=", "accept-language": "zh"}, "zh-CN"),
])
def test_the_language_comes_from_the_switch_then_the_browser(headers: dict[str, str], expected: str):
    assert i18n.language_of(gr.Request(headers=headers)) == expected


def test_a_text_has_one_translation_across_the_catalog_files():
    import json

    seen: dict[str, tuple[str, str]] = {}
    differing = []
    for path in sorted((i18n.CATALOGS / "zh-CN").glob("*.json")):
        for english, chinese in json.loads(path.read_text(encoding="utf-8")).items():
            first = seen.setdefault(english, (path.name, chinese))
            if first[1] != chinese:
                differing.append(f"{english!r}: {first[0]} {first[1]!r}, {path.name} {chinese!r}")
    assert differing == []
