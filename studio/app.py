"""Builds the Gradio Blocks app from a StudioContext and launches it on 127.0.0.1."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Sequence
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import gradio as gr  # noqa: E402

from core.accounts.users import Users, may  # noqa: E402
from core.data import store  # noqa: E402
from core.models import modeling
from core.workspace import Workspace  # noqa: E402
from studio.access import current_user  # noqa: E402
from studio.context import StudioContext  # noqa: E402
from studio.errors import friendly  # noqa: E402
from studio.guide import GuidePanel  # noqa: E402
from studio.i18n import COOKIE, LANGUAGES, NO_TRANSLATION, StaticTexts, language_of, tr  # noqa: E402
from studio.tabs import chat, configure, demo, evaluate, export, rate, train  # noqa: E402
from studio.tabs import data as data_tab  # noqa: E402

ASSETS = Path(__file__).resolve().parent.parent / "assets"
MAX_UPLOAD_MB = 512
SHUTDOWN_CHECKPOINT_WAIT_S = 8.0   # docker stop sends SIGKILL 10 s after SIGTERM
log = logging.getLogger("lora_studio")


def theme() -> gr.themes.Base:
    # Built-in fonts only (no CDN); weights 400 and 700 because the bundled semi-bold covers few letters.
    # Soft's teal-500 text on teal-100 labels and white on teal-500 buttons read at 2.2-2.5:1; the darker
    # shades below reach WCAG AA's 4.5:1 (checked in tests/e2e/test_journey.py).
    return gr.themes.Soft(
        primary_hue="teal", neutral_hue="slate",
        font=[gr.themes.LocalFont("IBM Plex Sans", weights=(400, 700)), "ui-sans-serif", "system-ui", "sans-serif"],
        font_mono=[gr.themes.LocalFont("IBM Plex Mono", weights=(400, 700)), "ui-monospace", "monospace"],
    ).set(
        block_label_text_color="*primary_800", block_title_text_color="*primary_800",
        block_info_text_color="*neutral_600", body_text_color_subdued="*neutral_600",
        button_primary_background_fill="*primary_700", button_primary_background_fill_hover="*primary_800",
        checkbox_label_background_fill_selected="*primary_700", color_accent="*primary_700",
    )


def build_app(ctx: StudioContext) -> gr.Blocks:
    # Uploads land in Gradio's cache first: files older than a day are removed, checked every hour.
    with gr.Blocks(title="LoRA Studio", analytics_enabled=False, delete_cache=(3600, 86400)) as app:
        with gr.Row(elem_id="header"):
            gr.Markdown("# LoRA Studio\nFine-tune a chat model on your own dialogues — no code needed.")
            status = gr.Markdown(elem_id="studio-status")
            switch = gr.Radio([(name, code) for code, name in LANGUAGES.items()], value="en",
                              label="Language · 语言", show_label=False, container=False, elem_id="language",
                              elem_classes=[NO_TRANSLATION], scale=0, min_width=200)
        # The config the Configure tab shows (validated, as a dict), read by the Train tab when starting.
        current_config = gr.State(None)
        rater_memory = rate.browser_memory()   # the Rate tab's rater name and session, per browser
        guide = GuidePanel.build()   # the first-run guide, above the tabs
        with gr.Tabs(elem_id="tabs") as tabs:
            with gr.Tab("Data", id="data", elem_id="tab-data") as data_page:
                data_tab.build(ctx, app)
            with gr.Tab("Configure", id="configure", elem_id="tab-configure") as configure_page:
                configure.build(ctx, app, current_config, configure_page)
            with gr.Tab("Train", id="train", elem_id="tab-train") as train_page:
                train.build(ctx, app, current_config)
            with gr.Tab("Evaluate", id="evaluate", elem_id="tab-evaluate") as evaluate_page:
                evaluate.build(ctx, app)
            with gr.Tab("Rate", id="rate", elem_id="tab-rate") as rate_page:
                rate.build(ctx, app, rater_memory)
            with gr.Tab("Chat", id="chat", elem_id="tab-chat") as chat_page:
                chat.build(ctx, chat_page)
            with gr.Tab("Export", id="export", elem_id="tab-export") as export_page:
                export.build(ctx, export_page)
            with gr.Tab("Demo", id="demo", elem_id="tab-demo") as demo_page:
                demo.build(ctx, app, demo_page)
        # Which tabs a role sees (the handlers refuse the rest in any case: studio.access).
        pages = {data_page: "data", configure_page: "configure", train_page: "view-runs", evaluate_page: "view-runs",
                 rate_page: "rate", chat_page: "chat", export_page: "export", demo_page: "view-runs"}
        guide.connect(ctx, app, tabs, list(pages))

        def pages_for(request: gr.Request) -> list[Any]:
            role = ctx.role(request)
            shown = [page for page, permission in pages.items() if may(role, permission)]
            # Move the selection only when the role cannot see Data, the page's first tab: moving it always would
            # undo a tab the user clicked before this load event came back. Such a role lands on Demo where it
            # sees it (a viewer: the page for showing a run), else on its first tab.
            landing = demo_page if demo_page in shown else next(iter(shown), None)
            first = gr.Tabs(selected=landing.id) if landing is not None and data_page not in shown else gr.Tabs()
            return [first, *(gr.Tab(visible=page in shown) for page in pages)]

        @friendly
        def studio_status(request: gr.Request) -> str:
            role = ctx.role(request)
            ready = modeling.default_model_ready(ctx.workspace)
            model_state = tr("ready") if ready else tr("being prepared (first start only, about 30 s)")
            who = tr("Logged in as {name} ({role}) · ", name=request.username, role=tr(role)) if role else ""
            where = tr("Workspace `{path}` · ", path=ctx.workspace.root) if may(role, "data") else ""   # admins only
            datasets = tr("{count} dataset(s) · ", count=len(store.list_datasets(ctx.workspace))) \
                if may(role, "data") else ""
            return who + where + datasets + tr("default model {state} · device: {device}", state=model_state,
                                                device=modeling.plan_device().device.upper())

        app.load(studio_status, None, status, api_name="studio_status", show_progress="hidden")
        _connect_language(app, switch, status, studio_status)
        app.load(friendly(pages_for), None, [tabs, *pages], api_name="pages_for_role", show_progress="hidden")
    return app


JS_REMEMBER_LANGUAGE = f"""(lang) => {{
    document.cookie = "{COOKIE}=" + lang + "; path=/; max-age=31536000; SameSite=Lax";
    document.documentElement.lang = lang;
    return lang;
}}"""


def _connect_language(app: gr.Blocks, switch: gr.Radio, status: gr.Markdown, studio_status: Any) -> None:
    """Every static text of the page in the browser's language on load, and again when the switch moves
    (the switch's cookie remembers the choice; handlers read it from each request: studio.i18n)."""
    texts = StaticTexts(app)

    @friendly
    def page_language(request: gr.Request) -> list[Any]:
        lang = language_of(request)   # the page is built in English: nothing to change then
        return [gr.update(value=lang), *(texts.first_drawing(lang) if lang != "en" else [gr.skip()] * len(drawn))]

    @friendly
    def switch_language(lang: str | None) -> list[Any]:
        return texts.updates(lang if lang in LANGUAGES else "en")

    drawn = [*texts.blocks, *texts.empty_tables]
    app.load(page_language, None, [switch, *drawn], api_name="page_language", show_progress="hidden")
    switch.input(switch_language, switch, texts.blocks, api_name="switch_language", show_progress="hidden",
                 js=JS_REMEMBER_LANGUAGE).then(studio_status, None, status, api_name="studio_status_again",
                                               show_progress="hidden")


def _log_to_workspace(workspace: Workspace) -> None:
    """logs/studio.log, rotated at 5 MB (five old files kept), each line with the user of its request."""
    handler = RotatingFileHandler(workspace.logs_dir / "studio.log", maxBytes=5 * 2**20, backupCount=5,
                                  encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s user=%(user)s %(name)s: %(message)s"))
    handler.addFilter(_with_user)
    logger = logging.getLogger("lora_studio")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def _with_user(record: logging.LogRecord) -> bool:
    record.user = current_user.get()
    return True


def _checkpoint_jobs_on_sigterm(ctx: StudioContext) -> None:
    """SIGTERM (`docker stop`, a service manager) asks the running job to save a checkpoint before the
    studio exits; the job itself carries on where it can, and is resumable where it cannot."""
    def on_sigterm(signum: int, frame: object) -> None:
        run_id = ctx.jobs.request_checkpoint(SHUTDOWN_CHECKPOINT_WAIT_S)
        if run_id:
            log.info("Shutting down: asked run %s for a checkpoint", run_id)
        raise KeyboardInterrupt  # Gradio's launch() closes the server on it

    signal.signal(signal.SIGTERM, on_sigterm)


def launch(workspace: Workspace, host: str = "127.0.0.1", port: int = 7860, accounts: Users | None = None,
           max_upload_mb: int = MAX_UPLOAD_MB, allowed_paths: Sequence[Path] = ()) -> None:
    _log_to_workspace(workspace)
    ctx = StudioContext.create(workspace, accounts, max_upload_mb * 2**20, allowed_paths)
    ctx.prepare_in_background()
    app = build_app(ctx)
    _checkpoint_jobs_on_sigterm(ctx)
    app.queue(default_concurrency_limit=4)
    print(f"LoRA Studio: workspace {workspace.root}", flush=True)
    app.launch(
        server_name=host, server_port=port, share=False, ssr_mode=False, mcp_server=False, pwa=False,
        max_file_size=f"{max_upload_mb}mb", show_error=False,   # no allowed_paths: downloads are copies (studio.downloads)
        theme=theme(), css_paths=[ASSETS / "studio.css"],
        js=(ASSETS / "rate_keys.js").read_text(encoding="utf-8"), footer_links=["api"],
        favicon_path=ASSETS / "logo.svg",
        auth=(lambda name, password: accounts.check(name, password) is not None) if accounts else None,
        auth_message="LoRA Studio: log in with the account an admin gave you.",
    )
