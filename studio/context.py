"""What every tab shares, created once at start-up and passed in: no module-level state."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from core.accounts.users import Role, Users
from core.data import formats, store
from core.inference.chat import ChatEngine
from core.jobs.runner import JobManager
from core.models import modeling
from core.system.device_lock import DeviceLock
from core.workspace import Workspace
from studio.access import guard, role_of

log = logging.getLogger("lora_studio")
Handler = Callable[..., Any]


@dataclass
class StudioContext:
    workspace: Workspace
    lock: DeviceLock
    chat: ChatEngine
    jobs: JobManager
    accounts: Users | None = None   # None: no log-in, one user on this machine
    max_upload_bytes: int = formats.MAX_UPLOAD_BYTES
    allowed_paths: tuple[Path, ...] = ()   # folders beside the workspace that typed paths may point into

    @classmethod
    def create(cls, workspace: Workspace, accounts: Users | None = None,
               max_upload_bytes: int = formats.MAX_UPLOAD_BYTES, allowed_paths: Sequence[Path] = ()) -> StudioContext:
        lock = DeviceLock(workspace)
        return cls(workspace=workspace, lock=lock, chat=ChatEngine(workspace, lock), jobs=JobManager(workspace, lock),
                   accounts=accounts, max_upload_bytes=max_upload_bytes, allowed_paths=tuple(allowed_paths))

    @property
    def path_roots(self) -> tuple[Path, ...] | None:
        """Where paths typed into the UI may point besides the workspace (core.planning.preflight): only
        there in a shared studio (with accounts); anywhere for the one user of a studio on 127.0.0.1."""
        return self.allowed_paths if self.accounts is not None else None

    def allow(self, permission: str, otherwise: Callable[[], Any] | None = None) -> Callable[[Handler], Handler]:
        """Decorator: the handler refuses users whose role lacks `permission` (studio.access); with
        `otherwise`, it returns that instead (for page-load events of tabs the role does not see)."""
        return lambda handler: guard(self.accounts, permission, handler, otherwise)

    def role(self, request: gr.Request | None) -> Role | None:
        return role_of(self.accounts, request)

    def user_name(self, request: gr.Request | None, typed: str) -> str:
        """Who is acting: the logged-in user where the studio has accounts (a typed name cannot stand in
        for someone else), otherwise the name typed into the page."""
        if self.accounts is None:
            return typed
        return str(getattr(request, "username", "") or "")

    def prepare_in_background(self) -> threading.Thread:
        """Seed the demo dataset now (fast); convert (~30 s, once) and load the default model behind the
        page, so the studio opens at once and the first chat reply does not wait for a model load."""
        store.ensure_demo_dataset(self.workspace)
        # transformers resolves its classes lazily, and two threads resolving them at once can fail
        # ("cannot import name 'AutoModel'"); resolve them here, before any background thread starts.
        import transformers

        for name in ("AutoConfig", "AutoModel", "AutoModelForCausalLM", "AutoTokenizer"):
            getattr(transformers, name)

        def convert() -> None:
            try:
                modeling.ensure_default_model(self.workspace)
                self.chat.preload(f"base:{modeling.DEFAULT_MODEL}")
            except Exception:  # noqa: BLE001 - reported by the Chat tab when it tries to load
                log.exception("Preparing the default model failed")

        worker = threading.Thread(target=convert, name="prepare-default-model", daemon=True)
        worker.start()
        return worker
