"""Turns every failure inside a handler into a readable message box, never a traceback."""

from __future__ import annotations

import functools
import inspect
import logging
import re
from collections.abc import Callable
from typing import Any

import gradio as gr

from core.errors import DiskFullError, StudioError, classify

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
        return gr.Error(without_server_paths(str(error)), title=f"{error.kind.capitalize()} problem")
    log.exception("Unexpected error in a UI handler")
    return gr.Error(f"Something unexpected went wrong ({type(error).__name__}). "
                    "The details are in the studio's log.", title="Unexpected error")


def friendly(handler: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a handler (plain or generator) so errors reach the user as gr.Error with a human message."""
    if inspect.isgeneratorfunction(handler):
        @functools.wraps(handler)
        def stream(*args: Any, **kwargs: Any) -> Any:
            try:
                yield from handler(*args, **kwargs)
            except gr.Error:
                raise
            except Exception as error:  # noqa: BLE001
                raise _as_gradio_error(error) from None
        return stream

    @functools.wraps(handler)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return handler(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as error:  # noqa: BLE001
            raise _as_gradio_error(error) from None
    return call
