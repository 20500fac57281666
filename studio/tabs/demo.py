"""Demo tab, for showing a fine-tuned model to stakeholders (what a viewer sees first): one finished run's
headline numbers in plain words — training time, loss, the latest evaluation against the base model with
95% intervals, the human ratings — its loss curve, and a chat in which the base model and the tuned run
answer the same message side by side. No settings: both answer as the run was trained to
(core.evaluation.showcase)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from typing import Any

import gradio as gr

from core.evaluation import showcase
from core.evaluation.showcase import EvaluationHeadline, Showcase
from core.planning.preflight import format_duration
from core.text import N_
from studio import conversation, plots
from studio.context import StudioContext
from studio.errors import friendly
from studio.i18n import tr

# The summaries are drawn in the reader's language (tr); these English texts are their catalog keys (N_).
NO_RUN = N_("No training run has finished yet: train one in the Train tab, and it appears here when it finishes.")
NO_EVALUATION = N_("No automatic evaluation yet: score this run against its base model in the Evaluate tab "
                   "(an admin can start one), and the numbers appear here.")
NO_RATINGS = N_("No one has rated this run's answers yet: start a blind rating session in the Rate tab "
                "(an admin can), and the results appear here.")
CI_NOTE = N_("Each figure comes with its 95% confidence interval (CI): the range the true value lies in, "
             "95 times out of 100. A change whose interval does not include 0 is a real change, not chance.")


def _loss(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def headline_markdown(shown: Showcase) -> str:
    training = shown.training
    took = tr(format_duration(training.wall_s)) if training.wall_s is not None else tr("not recorded")
    return (f"### {shown.name}\n"
            + tr("**{model}** fine-tuned on **{dataset}**, finished {finished}.", model=shown.model,
                 dataset=tr(shown.dataset), finished=shown.finished[:16].replace("T", " ")) + "\n\n"
            + tr("- **Training time:** {took} ({steps} steps)", took=took, steps=training.steps) + "\n"
            + tr("- **Final training loss:** {loss} — how far the model's answers were from the training answers at "
                 "the end (lower is better)", loss=_loss(training.final_loss)) + "\n"
            + tr("- **Best validation loss:** {loss} — the same on examples held back from training, the fairer figure",
                 loss=_loss(training.best_eval_loss)))


def evaluation_markdown(evaluation: EvaluationHeadline | None) -> str:
    if evaluation is None:
        return tr("### Automatic scores") + "\n" + tr(NO_EVALUATION)
    against = tr(evaluation.baseline) or tr("no other model")
    rows = [f"| {tr(metric.name)} | {tr(metric.base.words()) if metric.base else '–'} | {tr(metric.tuned.words())} | "
            f"{tr(metric.change.words(signed=True)) if metric.change else '–'} | {tr(metric.verdict)} |"
            for metric in evaluation.metrics]
    meanings = [f"- **{tr(metric.name)}**: {tr(metric.meaning)}" for metric in evaluation.metrics]
    header = [tr("Measure"), tr("Base model (before)"), tr("Tuned (after)"), tr("Change"), tr("Verdict")]
    return "\n".join([
        tr("### Automatic scores: before and after fine-tuning"),
        tr("On {samples} held-out prompts ({held_out}), the tuned run against {against} (evaluation {evaluation}).",
           samples=evaluation.samples, held_out=tr(evaluation.held_out), against=against,
           evaluation=evaluation.eval_id) + " " + tr(CI_NOTE), "",
        "| " + " | ".join(header) + " |", "| --- | --- | --- | --- | --- |",
        *rows, "", *meanings])


def ratings_markdown(ratings: dict[str, str] | None) -> str:
    if ratings is None:
        return tr("### Human ratings") + "\n" + tr(NO_RATINGS)
    lines = [f"- **{tr(name)}:** {tr(value)}" for name, value in ratings.items()]
    return "\n".join([tr("### Human ratings"), tr("People rated the answers without knowing which model wrote them. "
                      "Scores with their 95% confidence interval and how many items were rated (n)."), "", *lines])


def build(ctx: StudioContext, app: gr.Blocks, tab: gr.Tab) -> None:
    gr.Markdown("## What fine-tuning changed\nA finished run in numbers, then ask the base model and the tuned "
                "model the same question and compare their answers.", elem_id="demo-intro")
    # Any value passes Gradio's check against the listed choices (a script names a run without listing them
    # first); core refuses ids that are not a finished run.
    run = gr.Dropdown([], label="Run", elem_id="demo-run", info="A finished training run; the newest is shown first.",
                      allow_custom_value=True)
    with gr.Row(equal_height=False):
        with gr.Column(scale=1):
            headline = gr.Markdown(NO_RUN, elem_id="demo-headline")
        with gr.Column(scale=1):
            gr.Markdown("**Loss during training** — how far the model's answers were from the training answers, "
                        "step by step (lower is better; diamonds: examples held back from training).")
            loss_chart = gr.Plot(label="Loss during training", show_label=False, elem_id="demo-loss")
    evaluation = gr.Markdown(elem_id="demo-evaluation")
    ratings = gr.Markdown(elem_id="demo-ratings")
    gr.Markdown("### Ask both models\nThe same message goes to the base model and to the tuned run; "
                "both answer with the run's own reply settings.")
    with gr.Row():
        base_history = gr.Chatbot(label="Base model (before)", elem_id="demo-base", height=360, buttons=["copy"])
        tuned_history = gr.Chatbot(label="Tuned run (after)", elem_id="demo-tuned", height=360, buttons=["copy"])
    with gr.Row():
        message = gr.Textbox(placeholder="Type a question and press Enter", label="Question", show_label=False,
                             elem_id="demo-input", scale=5)
        send = gr.Button("Ask both", variant="primary", elem_id="demo-send", scale=1)
        clear = gr.Button("New conversation", elem_id="demo-clear", scale=1, min_width=170)
    shown = [headline, loss_chart, evaluation, ratings, base_history, tuned_history]

    @friendly
    @ctx.allow("view-runs", otherwise=lambda: gr.skip())
    def list_runs(current: str | None) -> Any:
        found = [(f"{status.name} · {status.finished[:10] if status.finished else status.created[:10]}",
                  status.run_id) for status in showcase.finished_runs(ctx.workspace)]
        ids = [run_id for _, run_id in found]
        return gr.Dropdown(choices=found, value=current if current in ids else (ids[0] if ids else None))

    @friendly
    @ctx.allow("view-runs")
    def show_run(run_id: str | None) -> tuple:
        if not run_id:
            return tr(NO_RUN), None, "", "", [], []
        found = showcase.showcase(ctx.workspace, run_id)
        return (headline_markdown(found), plots.as_plot(plots.loss_figure(found.loss_records)),
                evaluation_markdown(found.evaluation), ratings_markdown(found.ratings),
                gr.Chatbot(value=[], label=tr("Base model: {model} (before)", model=found.model)),
                gr.Chatbot(value=[], label=tr("Tuned: {run} (after)", run=found.name)))

    @friendly
    @ctx.allow("chat")
    def ask_both(text: str, turns_base: list[dict], turns_tuned: list[dict], run_id: str | None) -> Iterator[tuple]:
        text = (text or "").strip()
        if not text or not run_id:
            yield "", gr.skip(), gr.skip()
            return
        pair = showcase.demo_chat(ctx.workspace, run_id)
        with closing(conversation.answer(ctx.chat, text, pair.keys, (turns_base, turns_tuned), pair.system_prompt,
                                         pair.generation)) as answering:
            for conversations, _ in answering:
                yield "", *conversations

    @friendly
    @ctx.allow("chat")
    def clear_chat() -> tuple:
        return [], []

    quiet = {"show_progress": "hidden"}
    app.load(list_runs, run, run, api_name="demo_runs", **quiet)
    tab.select(list_runs, run, run, api_name="demo_runs_refresh", **quiet)
    run.change(show_run, run, shown, api_name="demo_show", **quiet)
    gr.on([send.click, message.submit], ask_both, [message, base_history, tuned_history, run],
          [message, base_history, tuned_history], api_name="demo_chat", concurrency_limit=1, concurrency_id="chat")
    clear.click(clear_chat, None, [base_history, tuned_history], api_name="demo_clear", queue=False)
