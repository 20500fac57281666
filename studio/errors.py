"""Turns every failure inside a handler into a readable message box, never a traceback."""

from __future__ import annotations

import functools
import inspect
import logging
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from core.errors import ConfigError, DiskFullError, StudioError, classify
from studio.i18n import language, language_of, tr

log = logging.getLogger("lora_studio")


# An absolute path of two or more parts; in a message it shrinks to its last two (server paths stay private).
_SERVER_PATH = re.compile(r"(?<![\w.:/])/(?:[^\s/'\"`]+/)+([^\s/'\"`]+/[^\s/'\"`,;:)]+)")


def without_server_paths(message: str) -> str:
    """`message` with absolute paths cut to '…/<folder>/<name>': enough to recognise a file, nothing about
    the server's layout. The full message is in the log."""
    return _SERVER_PATH.sub(r"…/\1", message)


def _as_gradio_error(error: Exception) -> gr.Error:
    if isinstance(error, OSError) and isinstance(known := classify(error, "Saving"), DiskFullError):
        log.error("Disk full: %s", error)
        error = known
    if isinstance(error, StudioError):
        log.info("Refused or failed: %s", error)
        return gr.Error(without_server_paths(in_reader_language(error)), title=tr(error_title(error)))
    log.exception("Unexpected error in a UI handler")
    return gr.Error(tr("Something unexpected went wrong ({error}). The details are in the studio's log.",
                       error=type(error).__name__), title=tr("Unexpected error"))


def error_title(error: type[StudioError] | StudioError) -> str:
    """The banner's title, in English: "Data problem"; "Cancelled" for work the user stopped."""
    return "Cancelled" if error.kind == "cancelled" else f"{error.kind.capitalize()} problem"


def in_reader_language(error: StudioError) -> str:
    """The error's message in the language of the request: its problem and its fix, each translated."""
    return f"{tr(error.problem)} {tr(error.fix)}".strip()


_PLAIN = (str, int, float, bool, list, dict, type(None))
_KIND_WORDS = {str: "text", int: "a whole number", float: "a number", bool: "yes/no", list: "a list", dict: "an object",
               type(None): "nothing"}


def _plain_types(annotation: Any) -> tuple[type, ...] | None:
    """The runtime types a plain annotation allows (`str | None` -> (str, NoneType)); None when it is
    anything else (Any, a gr.SelectData, a dataclass), which is not checked."""
    members = typing.get_args(annotation) if isinstance(annotation, types.UnionType) or \
        typing.get_origin(annotation) is typing.Union else (annotation,)
    allowed = tuple(typing.get_origin(member) or member for member in members)
    if not allowed or not all(kind in _PLAIN for kind in allowed):
        return None
    return (*allowed, int) if float in allowed else allowed   # 3 is a fine float


@dataclass(frozen=True)
class _InputTypes:
    """A handler's signature and the plain types each parameter allows, worked out once when it is wrapped."""

    signature: inspect.Signature
    allowed: dict[str, tuple[type, ...]]

    @classmethod
    def of(cls, handler: Callable[..., Any]) -> _InputTypes | None:
        try:
            hints = typing.get_type_hints(handler)
            signature = inspect.signature(handler)
        except (NameError, TypeError, ValueError):
            return None
        allowed = {name: kinds for name in signature.parameters
                   if (kinds := _plain_types(hints.get(name, Any))) is not None}
        return cls(signature, allowed)

    def check(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Values that come through the API can be anything: one of the wrong basic type is refused in words
        here, before the handler trips over it (the browser always sends the right types). None passes: it
        is how a page says nothing is chosen, and handlers answer it themselves."""
        try:
            given = self.signature.bind(*args, **kwargs).arguments
        except TypeError:
            return
        for name, value in given.items():
            allowed = self.allowed.get(name)
            if allowed is None or value is None or isinstance(value, allowed):   # None: nothing chosen (yet)
                continue
            if int in allowed and isinstance(value, float) and value.is_integer():   # gr.Number sends 3.0
                continue
            kinds = " or ".join(dict.fromkeys(_KIND_WORDS[kind] for kind in allowed if kind is not int or
                                              float not in allowed))
            got = f"{_KIND_WORDS.get(type(value), type(value).__name__)} {repr(value)[:40]}"
            raise ConfigError(f"The value for '{name}' is {got}, but it takes {kinds}.",
                              "Send a value of that kind (the studio's page always does).")


def friendly(handler: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a handler (plain or generator) so errors reach the user as gr.Error with a human message in
    their language, and values of the wrong type never reach it."""
    expected = _InputTypes.of(handler)

    def check(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        # Messages in the reader's language: every event of a page carries its request (studio.access).
        request = next((value for value in (*args, *kwargs.values()) if isinstance(value, gr.Request)), None)
        if request is not None:
            language.set(language_of(request))
        if expected is not None:
            expected.check(args, kwargs)

    if inspect.isgeneratorfunction(handler):
        @functools.wraps(handler)
        def stream(*args: Any, **kwargs: Any) -> Any:
            try:
                check(args, kwargs)
                reader_language = language.get()
                for update in handler(*args, **kwargs):
                    yield update
                    language.set(reader_language)   # Gradio runs each step in a fresh copy of the context
            except gr.Error:
                raise
            except Exception as error:  # noqa: BLE001
                raise _as_gradio_error(error) from None
        return stream

    @functools.wraps(handler)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            check(args, kwargs)
            return handler(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as error:  # noqa: BLE001
            raise _as_gradio_error(error) from None
    return call
