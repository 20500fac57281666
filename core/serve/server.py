"""`lora-studio serve`: one loaded base with several adapters behind the OpenAI-compatible API.

    app, batcher = load(workspace, ["faq-r16", "run:legal", "base:default"], lock)   # names as given
    run(workspace, names, host="127.0.0.1", port=8000)                              # until Ctrl-C

Every name must run on one base (runs trained on it, the base itself, or one merged export on its own):
that is what lets a single batch mix them. Clients name a model by what was given here (or its key).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from fastapi import FastAPI

from core.errors import ConfigError
from core.inference import choices
from core.inference.answering import Answerer
from core.serve.batcher import LOCK_WAIT_S, Batcher
from core.serve.openai_api import create_app
from core.system.device_lock import DeviceLock
from core.workspace import Workspace


def load(workspace: Workspace, names: Sequence[str], lock: DeviceLock, max_batch: int = 8,
         lock_wait_s: float = LOCK_WAIT_S) -> tuple[FastAPI, Batcher]:
    """Load the base and every adapter named (refused when they need different bases) and build the app."""
    if not names:
        raise ConfigError("No model to serve.", "Name one or more runs, exports or base models.")
    served = {name: choices.find(workspace, name) for name in dict.fromkeys(names)}
    first = next(iter(served.values()))
    with lock.hold("loading the API server's model"):
        answerer = Answerer(workspace, first.base)
        for choice in served.values():
            if not answerer.serves(choice):
                raise ConfigError(f"{choice.label} runs on '{choice.base}', but {first.label} on '{first.base}'.",
                                  "Serve one base per server: start another `lora-studio serve` on another --port.")
            with answerer.active(choice):   # loads its adapter now: a broken one fails here, not mid-request
                pass
    batcher = Batcher(answerer, lock, max_batch, lock_wait_s=lock_wait_s)
    return create_app(batcher, served), batcher


def run(workspace: Workspace, names: Sequence[str], host: str = "127.0.0.1", port: int = 8000, max_batch: int = 8,
        echo: Callable[[str], None] = print) -> None:
    import uvicorn

    app, batcher = load(workspace, names, DeviceLock(workspace), max_batch)
    echo(f"Serving {', '.join(dict.fromkeys(names))} at http://{host}:{port}/v1 (OpenAI-compatible; Ctrl-C stops)")
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
    finally:
        batcher.close()
