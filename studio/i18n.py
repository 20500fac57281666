"""The studio in English and in Simplified Chinese.

English is written in the code, as the text itself (gettext's convention: the English sentence is the key);
the Chinese of every such text lives in one place, the JSON files of assets/i18n/zh-CN/ (one file per area of
the product, merged on load). `python -m studio.i18n_audit` lists what is not translated yet.

- Static texts (labels, help, placeholders, button and tab names, fixed Markdown) are written in English in
  the tab builders; `StaticTexts` finds them in the built app and relabels them in the reader's language on
  page load and when the language switch changes.
- Texts made by handlers go through `tr()`, which reads the language of the request being handled
  (`language`, set from the request by studio.errors.friendly and studio.access.guard, which wrap every event).
- Texts made in core/ (error messages, the guide, the glossary) are English; `tr()` translates them too,
  including messages core formats with values (`f"Line {number}: {why}"` is catalogued under that template
  with the expression names as placeholders, and matched back).

The language is a cookie the switch sets (remembered per browser); without one, the browser's preferred
language decides.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextvars import ContextVar
from functools import cache
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.components.api_component import Api

CATALOGS = Path(__file__).resolve().parent.parent / "assets" / "i18n"
LANGUAGES = {"en": "English", "zh-CN": "简体中文"}
COOKIE = "lora_studio_lang"
NO_TRANSLATION = "notranslate"   # a block with this class keeps its words (the language switch; browsers honour it too)

# The language of the request being handled; studio.access sets it for every event.
language: ContextVar[str] = ContextVar("language", default="en")

_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
MIN_FIXED_CHARACTERS = 3   # a template matches filled-in text only when this much of it is fixed words


@cache
def catalog(lang: str) -> dict[str, str]:
    """English text -> its translation, from every JSON file of assets/i18n/<lang>/ ({} for English)."""
    merged: dict[str, str] = {}
    for path in sorted((CATALOGS / lang).glob("*.json")):
        merged.update(json.loads(path.read_text(encoding="utf-8")))
    return merged


@cache
def _templates(lang: str) -> list[tuple[re.Pattern[str], list[str], str]]:
    """The catalog's texts with placeholders as patterns that match their filled-in English, the most
    specific (most fixed text) first."""
    compiled = []
    for english, translated in catalog(lang).items():
        names = _PLACEHOLDER.findall(english)
        if not names:
            continue
        fixed = _PLACEHOLDER.split(english)[::2]
        if len("".join(fixed).replace(" ", "")) < MIN_FIXED_CHARACTERS:
            continue   # "{a}: {b}" would match half of all messages
        pattern = "(.+?)".join(re.escape(part) for part in fixed)
        compiled.append((re.compile(pattern, re.DOTALL), names, translated, sum(map(len, fixed))))
    compiled.sort(key=lambda entry: -entry[3])
    return [(pattern, names, translated) for pattern, names, translated, _ in compiled]


def tr(text: str, **values: Any) -> str:
    """`text` in the language of the request being handled, with `values` filled into its {placeholders}.
    English text made elsewhere with values already in it (a core error message) is matched against the
    catalog's templates; what the catalog lacks stays English."""
    return translate(text, language.get(), **values)


def translate(text: str, lang: str, **values: Any) -> str:
    if not text:
        return text
    translated = catalog(lang).get(text)
    if translated is None and not values and lang != "en":
        translated = _match_template(text, lang)
    result = translated if translated is not None else text
    return result.format(**values) if values else result


def is_translated(text: str, lang: str) -> bool:
    return text in catalog(lang) or _match_template(text, lang) is not None


def _match_template(text: str, lang: str) -> str | None:
    for pattern, names, translated in _templates(lang):
        match = pattern.fullmatch(text)
        if match:
            return _fill(translated, {name: translate(value, lang) for name, value in zip(names, match.groups())})
    return None


def _fill(template: str, values: dict[str, str]) -> str:
    """`template` with its {placeholders} replaced by `values` (named by expressions, so not str.format)."""
    return _PLACEHOLDER.sub(lambda placeholder: values.get(placeholder[1], placeholder[0]), template)


def language_of(request: gr.Request | None) -> str:
    """The language chosen in this browser (the switch's cookie), else the first of the browser's preferred
    languages that the studio speaks, else English."""
    headers = getattr(request, "headers", None) or {}
    try:
        chosen = SimpleCookie(headers.get("cookie", "")).get(COOKIE)
    except CookieError:
        chosen = None
    if chosen is not None and chosen.value in LANGUAGES:
        return chosen.value
    for preference in headers.get("accept-language", "").split(","):
        tag = preference.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return "zh-CN"
        if tag.startswith("en"):
            return "en"
    return "en"


# Which properties of which blocks carry words a reader sees (an input's value is the user's, never translated).
_TEXT_PROPERTIES = ("label", "info", "placeholder")
_VALUE_IS_TEXT = (gr.Markdown, gr.Button, gr.DownloadButton, gr.UploadButton)
_HAS_CHOICES = (gr.Radio, gr.Dropdown, gr.CheckboxGroup)


class StaticTexts:
    """The words written into the app when it was built, found by walking its blocks, so the tab builders
    stay plain Gradio in English; `updates(lang)` relabels all of them at once.

    A block's Markdown text or choices that some event of the app also sets belong to that event (a run's
    banner, a list of saved presets): relabelling them would put the build-time words back over what the
    handler showed, so the handler writes them in the reader's language instead, and only their labels and
    help are relabelled here. Create this after the app's own events and before the language events."""

    def __init__(self, app: gr.Blocks) -> None:
        handled = {id(block) for event in app.fns.values() for block in event.outputs}
        drawn_on_load = {id(block) for event in app.fns.values() for block in event.outputs
                         if any(trigger == "load" for _, trigger in event.targets)}
        # Empty tables until a handler fills them: their column names, for the page's first drawing only.
        self.empty_tables = {block: list(block.headers) for block in app.blocks.values()
                             if isinstance(block, gr.Dataframe) and id(block) not in drawn_on_load
                             and block.headers and not all(str(name).isdigit() for name in block.headers)}
        self.texts: dict[gr.blocks.Block, dict[str, Any]] = {}   # everything, for the catalog check
        self.relabelled: dict[gr.blocks.Block, dict[str, Any]] = {}
        for block in app.blocks.values():
            if isinstance(block, Api) or NO_TRANSLATION in (getattr(block, "elem_classes", None) or []):
                continue   # gr.api() endpoints are blocks too, never shown
            found = {name: getattr(block, name) for name in _TEXT_PROPERTIES
                     if isinstance(getattr(block, name, None), str) and getattr(block, name).strip()}
            if isinstance(block, _VALUE_IS_TEXT) and isinstance(block.value, str) and block.value.strip():
                found["value"] = block.value
            if isinstance(block, _HAS_CHOICES) and block.choices:
                found["choices"] = list(block.choices)
            if not found:
                continue
            self.texts[block] = found
            owned_by_handlers = ("choices", "value") if id(block) in handled and not isinstance(block, gr.Button) \
                else ()
            if relabel := {name: text for name, text in found.items() if name not in owned_by_handlers}:
                self.relabelled[block] = relabel

    @property
    def blocks(self) -> list[gr.blocks.Block]:
        """The blocks `updates` relabels, in its order."""
        return list(self.relabelled)

    def english(self) -> Iterator[str]:
        """Every English text in the app, for the catalog check."""
        for headers in self.empty_tables.values():
            yield from headers
        for properties in self.texts.values():
            for name, text in properties.items():
                if name == "choices":
                    yield from (label for label, _ in text if isinstance(label, str) and label.strip())
                else:
                    yield text

    def updates(self, lang: str) -> list[dict[str, Any]]:
        return [gr.update(**{name: self._translated(name, text, lang) for name, text in properties.items()})
                for properties in self.relabelled.values()]

    def first_drawing(self, lang: str) -> list[dict[str, Any]]:
        """`updates`, then the empty tables with their column names in `lang`: for the page-load event only,
        which comes before anything could fill them (later, relabelling would empty a filled table)."""
        tables = [gr.update(value={"headers": [translate(name, lang) for name in headers], "data": []})
                  for headers in self.empty_tables.values()]
        return [*self.updates(lang), *tables]

    @staticmethod
    def _translated(name: str, text: Any, lang: str) -> Any:
        if name == "choices":   # the labels change, the values the handlers get do not
            return [(translate(label, lang) if isinstance(label, str) else label, value) for label, value in text]
        return translate(text, lang)
