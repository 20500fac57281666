"""Who may do what, checked on the server in every handler that changes or reveals something, from the
logged-in user's role (core.accounts) — hiding a tab is a courtesy, this is the rule. A studio without
accounts (on 127.0.0.1 only) lets its one user do everything.

    @ctx.allow("train")        # studio.context: the permission a handler needs
    def start_run(...): ...

A guarded handler takes the request as one more argument, so handlers that call each other call the
plain function, and only the event gets the guarded one. A handler that needs the user itself (the Rate tab:
a rater rates as the logged-in user) declares a `request: gr.Request` parameter and gets it.
"""

from __future__ import annotations

import functools
import inspect
import logging
import typing
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

import gradio as gr

from core.accounts.users import Role, Users, may
from core.errors import StudioError
from studio.i18n import language, language_of


class NotAllowed(StudioError):
    kind = "permission"


# The user of the request being handled, for the log (studio.app puts it on every line); "-" without accounts.
current_user: ContextVar[str] = ContextVar("current_user", default="-")
log = logging.getLogger("lora_studio")
QUIET_PERMISSIONS = ("view-runs",)   # polled every second by open pages: not worth a log line each


def role_of(accounts: Users | None, request: gr.Request | None) -> Role | None:
    """The role of the request's user; None when the studio has no accounts."""
    if accounts is None:
        return None
    name = getattr(request, "username", None)
    role = accounts.role_of(name) if name else None
    if role is None:   # Gradio lets only logged-in users through; a user removed since then gets nothing
        raise NotAllowed("You are not logged in as a user of this studio.", "Log in again.")
    return role


def guard(accounts: Users | None, permission: str, handler: Callable[..., Any],
          otherwise: Callable[[], Any] | None = None) -> Callable[..., Any]:
    """`handler` refusing users whose role lacks `permission`: it raises NotAllowed, or returns
    `otherwise()` (page-load events of tabs a role does not see). Gradio hands the request to the wrapper;
    the handler itself never sees it."""
    def allowed(request: gr.Request | None) -> bool:
        role = role_of(accounts, request)
        current_user.set(getattr(request, "username", None) or "-")
        language.set(language_of(request))   # also for events not wrapped in studio.errors.friendly
        if may(role, permission):
            if permission not in QUIET_PERMISSIONS:
                log.info("%s (%s)", handler.__name__, permission)
            return True
        log.warning("refused %s (%s) to role %s", handler.__name__, permission, role)
        if otherwise is None:
            raise NotAllowed(f"Your role ({role}) does not allow this ({permission}).",
                             "Ask an admin of this studio if you need it.")
        return False

    # Gradio passes a gr.Request to a positional parameter annotated so: the wrapper has one right after
    # the handler's positional parameters (before any **kwargs, which inputs_kwargs= events use).
    signature = inspect.signature(handler)
    positional = [parameter for parameter in signature.parameters.values()
                  if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD)]
    keeps_request = "request" in signature.parameters
    at = list(signature.parameters).index("request") if keeps_request else len(positional)

    def without_request(args: tuple[Any, ...]) -> tuple[Any, ...]:
        return args if keeps_request else (*args[:at], *args[at + 1:])

    if inspect.isgeneratorfunction(handler):
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if allowed(args[at]):
                yield from handler(*without_request(args), **kwargs)
            else:
                yield otherwise()  # type: ignore[misc]
    else:
        def wrapper(*args: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
            if allowed(args[at]):
                return handler(*without_request(args), **kwargs)
            return otherwise()  # type: ignore[misc]
    functools.update_wrapper(wrapper, handler)
    del wrapper.__wrapped__   # Gradio must read the signature below, not the handler's
    wrapper.permission = permission  # type: ignore[attr-defined] - the audit in tests/test_access.py reads it
    if not keeps_request:
        request = inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=gr.Request)
        rest = [parameter for parameter in signature.parameters.values() if parameter not in positional]
        signature = signature.replace(parameters=[*positional, request, *rest])
    wrapper.__signature__ = signature  # type: ignore[attr-defined]
    wrapper.__annotations__ = {**_resolved_hints(handler), "request": gr.Request}
    return wrapper


def _resolved_hints(handler: Callable[..., Any]) -> dict[str, Any]:
    """The handler's annotations as objects (Gradio spots gr.SelectData & co. by them); {} when a name
    cannot be resolved from the handler's module."""
    try:
        return typing.get_type_hints(handler)
    except (NameError, TypeError):
        return {}
