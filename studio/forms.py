"""The run config as a form: one widget per config field, generated from core.config's pydantic models.

Types, ranges, defaults, choices and help text come from the models themselves, so a field added to
core/config.py appears in the form without touching this file. Values go back through the same
validation as a YAML file or `--set`, so the form can never run a config the CLI would refuse.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import annotated_types
import gradio as gr
import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import to_jsonable_python

from core import config as run_config

SECTION_TITLES = {"model": "Model", "data": "Data", "lora": "LoRA adapter", "train": "Training",
                  "generation": "Replies (evaluation samples and chat)"}
FIELDS_PER_ROW = 3


@dataclass(frozen=True)
class FormField:
    """One config field and its widget, with the conversions between widget value and config value."""

    name: str                              # dotted, as `--set` spells it: "lora.r"
    widget: gr.components.Component
    to_config: Callable[[Any], Any]        # widget value -> config value
    to_widget: Callable[[Any], Any]        # config value -> widget value


def _identity(value: Any) -> Any:
    return value


def label(name: str, info: FieldInfo) -> str:
    return info.title or name.rsplit(".", 1)[-1].replace("_", " ").capitalize()


def field_label(name: str) -> str:
    """The form's label for a dotted field name ("train.max_seq_length" -> "Max length (tokens)")."""
    model: type[BaseModel] = run_config.RunConfig
    *sections, leaf = name.split(".")
    for section in sections:
        model = model.model_fields[section].annotation
    return label(name, model.model_fields[leaf])


def api_name(name: str) -> str:
    return name.replace(".", "_")


def elem_id(name: str) -> str:
    return "cfg-" + name.replace(".", "-").replace("_", "-")


def _bounds(info: FieldInfo) -> tuple[float | None, float | None]:
    low = high = None
    for rule in info.metadata:
        if isinstance(rule, (annotated_types.Ge, annotated_types.Gt)):
            low = getattr(rule, "ge", getattr(rule, "gt", None))
        elif isinstance(rule, (annotated_types.Le, annotated_types.Lt)):
            high = getattr(rule, "le", getattr(rule, "lt", None))
    return low, high


def _split_optional(annotation: Any) -> tuple[Any, bool]:
    """(the type without None, whether None is allowed)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(members) == 1:
            return members[0], len(members) < len(typing.get_args(annotation))
    return annotation, False


def _literal_choices(annotation: Any) -> list[Any]:
    return list(typing.get_args(annotation)) if typing.get_origin(annotation) is Literal else []


def _name_list(annotation: Any) -> list[Any] | None:
    """For `list[str]` or `list[str] | Literal[...]` (names, or a keyword such as "all-linear"): the
    keywords (maybe none); None for any other type."""
    members = typing.get_args(annotation) if typing.get_origin(annotation) in (typing.Union, types.UnionType) \
        else (annotation,)
    lists = [m for m in members if typing.get_origin(m) is list and typing.get_args(m) == (str,)]
    keywords = [choice for member in members for choice in _literal_choices(member)]
    return keywords if lists and len(lists) + sum(1 for m in members if _literal_choices(m)) == len(members) else None


def _converters(annotation: Any, optional: bool) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """(widget value -> config value, config value -> widget value) for a field type."""
    if annotation is int:
        return (lambda v: int(v) if isinstance(v, float) and v.is_integer() else v), _identity
    if annotation in (bool, float) or _literal_choices(annotation):
        return _identity, _identity
    if (keywords := _name_list(annotation)) is not None:
        def to_list_or_keyword(value: Any) -> Any:
            chosen = [value] if isinstance(value, str) else list(value or [])
            return next((keyword for keyword in keywords if keyword in chosen), chosen)
        return to_list_or_keyword, lambda value: [value] if isinstance(value, str) else list(value)
    if annotation is str:
        return (lambda v: v or None) if optional else _identity, lambda value: value or ""
    return (lambda text: yaml.safe_load(text) if str(text or "").strip() else None,
            lambda value: "" if value is None else yaml.safe_dump(value, allow_unicode=True).strip())


def _widget(name: str, info: FieldInfo, value: Any) -> gr.components.Component:
    """The widget that suits the field's type; a YAML text box for anything unusual."""
    common = {"label": label(name, info), "info": info.description, "elem_id": elem_id(name), "value": value}
    annotation, _ = _split_optional(info.annotation)
    if annotation is bool:
        return gr.Checkbox(**common)
    if annotation in (int, float):
        low, high = _bounds(info)
        is_int = annotation is int
        return gr.Number(minimum=low, maximum=high, precision=0 if is_int else None,
                         step=1 if is_int else _float_step(info.default), **common)
    if choices := _literal_choices(annotation):
        return gr.Dropdown(choices, **common)
    if (keywords := _name_list(annotation)) is not None:
        suggestions = keywords + [example for example in (info.examples or []) if example not in keywords]
        return gr.Dropdown(suggestions, multiselect=True, allow_custom_value=True, **common)
    if annotation is str:
        return gr.Textbox(**common)
    # Anything else (a new nested list, a mapping…) is edited as YAML and validated like a config file.
    return gr.Textbox(lines=3, **{**common, "info": f"{info.description or ''} (YAML)".strip()})


def _is_section(info: FieldInfo) -> bool:
    return isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)


def _is_wide(info: FieldInfo) -> bool:
    annotation, _ = _split_optional(info.annotation)
    return annotation not in (bool, int, float) and not _literal_choices(annotation)


def _float_step(default: Any) -> float:
    """Arrow-key step for a float: a tenth of its default's order of magnitude (1e-5 for 2e-4)."""
    if not isinstance(default, (int, float)) or default == 0:
        return 0.01
    from math import floor, log10

    return 10 ** (floor(log10(abs(default))) - 1)


class ConfigForm:
    """The widgets of every RunConfig field, in the models' order, grouped in one accordion per section."""

    def __init__(self, fields: list[FormField]) -> None:
        self.fields = fields

    @classmethod
    def build(cls, custom: dict[str, gr.components.Component] | None = None,
              open_sections: Sequence[str] = ("model", "data", "lora", "train")) -> ConfigForm:
        """Render the form in the current Blocks context. `custom` supplies ready-made widgets (created
        with render=False) for some fields, e.g. a model picker for "model.name"."""
        return cls(cls._render_section(run_config.RunConfig, "", custom or {}, open_sections))

    @classmethod
    def _render_section(cls, model: type[BaseModel], prefix: str, custom: dict[str, gr.components.Component],
                        open_sections: Sequence[str]) -> list[FormField]:
        """Wide fields (text, lists, custom pickers) get a row each; short ones share rows of three;
        a nested section becomes an accordion."""
        fields: list[FormField] = []
        row: list[tuple[str, FieldInfo]] = []

        def flush() -> None:
            if row:
                with gr.Row():
                    fields.extend(cls._render(name, info, custom) for name, info in row)
                row.clear()

        for key, info in model.model_fields.items():
            name = f"{prefix}{key}"
            if _is_section(info):
                flush()
                with gr.Accordion(SECTION_TITLES.get(name, key.capitalize()), open=name in open_sections,
                                  elem_id=f"cfg-section-{key}"):
                    fields += cls._render_section(info.annotation, f"{name}.", custom, open_sections)
                continue
            wide = name in custom or _is_wide(info)
            if wide:
                flush()
            row.append((name, info))
            if wide or len(row) == FIELDS_PER_ROW:
                flush()
        flush()
        return fields

    @staticmethod
    def _render(name: str, info: FieldInfo, custom: dict[str, gr.components.Component]) -> FormField:
        to_config, to_widget = _converters(*_split_optional(info.annotation))
        if name in custom:
            widget = custom[name].render()
        else:
            default = to_jsonable_python(info.get_default(call_default_factory=True))
            widget = _widget(name, info, to_widget(default))
        return FormField(name, widget, to_config, to_widget)

    @property
    def components(self) -> list[gr.components.Component]:
        return [field.widget for field in self.fields]

    @property
    def inputs(self) -> dict[str, gr.components.Component]:
        """Every widget by its API name ("lora.r" -> "lora_r"), for `inputs_kwargs=`: handlers then take
        `**values`, and gradio_client callers name the fields they set."""
        return {api_name(field.name): field.widget for field in self.fields}

    def widget(self, name: str) -> gr.components.Component:
        """The widget of one dotted field name, for the few handlers that set one field from another."""
        return next(field.widget for field in self.fields if field.name == name)

    def read(self, values: dict[str, Any]) -> run_config.RunConfig:
        """The validated config from widget values keyed by API name; raises ConfigError."""
        data: dict[str, Any] = {}
        for field in self.fields:
            section = data
            *parents, leaf = field.name.split(".")
            for part in parents:
                section = section.setdefault(part, {})
            section[leaf] = field.to_config(values[api_name(field.name)])
        return run_config.validate(data)

    def show(self, config: run_config.RunConfig) -> list[Any]:
        """Widget values (in `components` order) that display `config`."""
        dumped = config.model_dump(mode="json")
        values = []
        for field in self.fields:
            value: Any = dumped
            for part in field.name.split("."):
                value = value[part]
            values.append(field.to_widget(value))
        return values
