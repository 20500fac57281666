"""What every tab shares, created once at start-up and passed in: no module-level state."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from core.data import store
from core.inference.chat import ChatEngine
from core.jobs.runner import JobManager
from core.models import modeling
from core.system.device_lock import DeviceLock
from core.workspace import Workspace

log = logging.getLogger("lora_studio")


@dataclass
class StudioContext:
    workspace: Workspace
    lock: DeviceLock
    chat: ChatEngine
    jobs: JobManager

    @classmethod
    def create(cls, workspace: Workspace) -> StudioContext:
        lock = DeviceLock(workspace)
        return cls(workspace=workspace, lock=lock, chat=ChatEngine(workspace, lock), jobs=JobManager(workspace, lock))

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
