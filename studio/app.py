"""Builds the Gradio Blocks app from a StudioContext and launches it on 127.0.0.1."""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import gradio as gr  # noqa: E402

from core.data import store  # noqa: E402
from core.models import modeling
from core.workspace import Workspace  # noqa: E402
from studio.context import StudioContext  # noqa: E402
from studio.errors import friendly  # noqa: E402
from studio.tabs import chat, configure, evaluate, planned, train  # noqa: E402
from studio.tabs import data as data_tab  # noqa: E402

ASSETS = Path(__file__).resolve().parent.parent / "assets"
MAX_UPLOAD = "512mb"
SHUTDOWN_CHECKPOINT_WAIT_S = 8.0   # docker stop sends SIGKILL 10 s after SIGTERM
log = logging.getLogger("lora_studio")


def theme() -> gr.themes.Base:
    # Built-in fonts only (no CDN); weights 400 and 700 because the bundled semi-bold covers few letters.
    return gr.themes.Soft(
        primary_hue="teal", neutral_hue="slate",
        font=[gr.themes.LocalFont("IBM Plex Sans", weights=(400, 700)), "ui-sans-serif", "system-ui", "sans-serif"],
        font_mono=[gr.themes.LocalFont("IBM Plex Mono", weights=(400, 700)), "ui-monospace", "monospace"],
    )


def build_app(ctx: StudioContext) -> gr.Blocks:
    with gr.Blocks(title="LoRA Studio", analytics_enabled=False) as app:
        with gr.Row(elem_id="header"):
            gr.Markdown("# LoRA Studio\nFine-tune a chat model on your own dialogues — no code needed.")
            status = gr.Markdown(elem_id="studio-status")
        # The config the Configure tab shows (validated, as a dict), read by the Train tab when starting.
        current_config = gr.State(None)
        with gr.Tabs(elem_id="tabs"):
            with gr.Tab("Data", id="data", elem_id="tab-data"):
                data_tab.build(ctx, app)
            with gr.Tab("Configure", id="configure", elem_id="tab-configure"):
                configure.build(ctx, app, current_config)
            with gr.Tab("Train", id="train", elem_id="tab-train"):
                train.build(ctx, app, current_config)
            with gr.Tab("Evaluate", id="evaluate", elem_id="tab-evaluate"):
                evaluate.build(ctx, app)
            with gr.Tab("Rate", id="rate", elem_id="tab-rate"):
                planned.build("Rate")
            with gr.Tab("Chat", id="chat", elem_id="tab-chat"):
                chat.build(ctx)
            with gr.Tab("Export", id="export", elem_id="tab-export"):
                planned.build("Export")

        @friendly
        def studio_status() -> str:
            ready = modeling.default_model_ready(ctx.workspace)
            model_state = "ready" if ready else "being prepared (first start only, about 30 s)"
            datasets = len(store.list_datasets(ctx.workspace))
            return (f"Workspace `{ctx.workspace.root}` · {datasets} dataset(s) · "
                    f"default model {model_state} · device: {modeling.plan_device().device.upper()}")

        app.load(studio_status, None, status, api_name="studio_status", show_progress="hidden")
    return app


def _log_to_workspace(workspace: Workspace) -> None:
    handler = logging.FileHandler(workspace.logs_dir / "studio.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("lora_studio")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def _checkpoint_jobs_on_sigterm(ctx: StudioContext) -> None:
    """SIGTERM (`docker stop`, a service manager) asks the running job to save a checkpoint before the
    studio exits; the job itself carries on where it can, and is resumable where it cannot."""
    def on_sigterm(signum: int, frame: object) -> None:
        run_id = ctx.jobs.request_checkpoint(SHUTDOWN_CHECKPOINT_WAIT_S)
        if run_id:
            log.info("Shutting down: asked run %s for a checkpoint", run_id)
        raise KeyboardInterrupt  # Gradio's launch() closes the server on it

    signal.signal(signal.SIGTERM, on_sigterm)


def launch(workspace: Workspace, host: str = "127.0.0.1", port: int = 7860) -> None:
    _log_to_workspace(workspace)
    ctx = StudioContext.create(workspace)
    ctx.prepare_in_background()
    app = build_app(ctx)
    _checkpoint_jobs_on_sigterm(ctx)
    app.queue(default_concurrency_limit=4)
    print(f"LoRA Studio: workspace {workspace.root}", flush=True)
    app.launch(
        server_name=host, server_port=port, share=False, ssr_mode=False, mcp_server=False, pwa=False,
        max_file_size=MAX_UPLOAD, allowed_paths=[str(workspace.exports_dir)], show_error=False,
        theme=theme(), css_paths=[ASSETS / "studio.css"], footer_links=["api"],
        favicon_path=ASSETS / "logo.svg",
    )
