"""The Chat and Export tabs in Simplified Chinese: their handlers' messages (and the core texts they show)
come out in the reader's language, with the values filled in, and stay English for an English reader."""

import contextvars
import dataclasses
import html
import re
from collections.abc import Iterator
from pathlib import Path

import gradio as gr
import pytest

from core.inference.streaming import Reply
from core.workspace import Workspace
from studio.context import StudioContext
from studio.i18n import COOKIE
from studio.tabs import chat, export

CHINESE = re.compile(r"[\u4e00-\u9fff]")


def reader(lang: str) -> gr.Request:
    return gr.Request(headers={"cookie": f"{COOKIE}={lang}"})


def handler(build, ctx: StudioContext, api_name: str):
    with gr.Blocks() as app, gr.Tab("Tab") as tab:
        build(ctx, tab)
    return next(block.fn for block in app.fns.values() if block.api_name == api_name)


class OneReply:
    """A chat engine that answers every turn with the same two steps, without a model."""

    def stream(self, turns, settings) -> Iterator[list[Reply]]:
        yield [Reply(text="Hi", tokens=1, first_token_s=0.25) for _ in turns]
        yield [Reply(text="Hi there", tokens=11, first_token_s=0.25, decode_s=2.0, finish="length") for _ in turns]


@pytest.fixture()
def ctx(tmp_path: Path) -> StudioContext:
    return StudioContext.create(Workspace.open(tmp_path / "ws"))


def test_a_streamed_chat_reply_says_its_figures_in_the_readers_language(ctx: StudioContext):
    reply = handler(chat.build, dataclasses.replace(ctx, chat=OneReply()), "chat")
    for lang, expected in (("zh-CN", "首个 token 用时 0.25 秒 · 每秒 5.0 个 token · 共 11 个 token · 已达长度上限而停止"),
                           ("en", "First token after 0.25 s · 5.0 tokens/s · 11 tokens · stopped at the length limit")):
        steps = reply("Hello", [], [], chat.DEFAULT_KEY, chat.DEFAULT_KEY, False, "", 0.7, 64, 0.9, 1.1, reader(lang))
        # Gradio runs every step of a streamed event in a fresh copy of the event's context: so does this.
        shown = [contextvars.copy_context().run(next, steps, None) for _ in range(4)]
        assert shown[-1] is None and shown[-2][3] == expected


def test_the_export_tab_refuses_a_run_without_adapter_in_the_readers_language(ctx: StudioContext):
    start = handler(export.build, ctx, "export_start")
    with pytest.raises(gr.Error) as refused:
        start("faq-r16", "merged", "", reader("zh-CN"))
    assert CHINESE.search(refused.value.message) and "“faq-r16”" in refused.value.message
    assert refused.value.title == "设置问题"
    with pytest.raises(gr.Error, match="Run 'faq-r16' has no adapter to export yet. Pick a run that finished"):
        start("faq-r16", "merged", "", reader("en"))


def test_an_export_jobs_progress_and_summary_read_in_chinese():
    from core.system.job_status import JobStatus
    from studio.i18n import language

    title = "export of run 'faq' (Adapter only (zip))"
    running = JobStatus("export", title, "running", done=0, total=2, message="Copying the adapter of run 'faq'")
    done = JobStatus("export", title, "finished", done=2, total=2,
                     message="Exported run 'faq' as Adapter only (zip) into exports/faq-adapter: zip of 1.5 MB tested.")
    token = language.set("zh-CN")
    try:
        assert export.banner(running) == ("**正在导出** · 导出训练任务“faq”（仅适配器（zip）） — 第 1 步，共 2 步："
                                          "正在复制训练任务“faq”的适配器")
        assert export.banner(done) == ("**✓ 完成** · 导出训练任务“faq”（仅适配器（zip）） — 已将训练任务“faq”导出为"
                                       "仅适配器（zip），保存在 `exports/faq-adapter`：zip 文件（1.5 MB）已通过测试。")
    finally:
        language.reset(token)
    assert export.banner(done) == f"**✓ Done** · {html.escape(title)} — {done.message}"
