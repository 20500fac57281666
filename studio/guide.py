"""The first-run guide above the tabs: the path Data → Configure → Train → Evaluate → Rate → Chat → Export with
the step to do now highlighted, one sentence on what to do in it, a button per step that opens its tab, and
the glossary ("What do these words mean?", from core.glossary).

Only roles that may train see it (it starts hidden; the page-load event shows it to them). It reads the
workspace through core.guide when the page loads and whenever a tab is selected — no polling. "Hide this
guide" keeps it hidden in this browser (gr.BrowserState with a fixed key, like the Rate tab's memory);
"Show the guide" brings it back.

Its events are the API too: /guide (the steps now: one label per step, the sentence, the hide button;
nothing for a role that may not train), /guide_hide, /guide_show, /guide_go_<step> (selects that step's tab).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from core import glossary, guide
from studio.context import StudioContext
from studio.errors import friendly


def browser_memory() -> gr.BrowserState:
    """Whether this browser hid the guide. A fixed key (Gradio draws a new one per start otherwise), so a
    hidden guide stays hidden after a studio restart; the flag is nothing to hide."""
    return gr.BrowserState({"hidden": False}, storage_key="lora-studio-guide", secret="lora-studio-guide")


def glossary_markdown() -> str:
    return "\n".join(f"- **{term}** — {meaning}" for term, meaning in glossary.TERMS.items())


def render(steps: list[guide.Step]) -> tuple:
    """One button per step (✓ when done, the current one highlighted), the sentence, the hide button."""
    now = guide.current(steps)
    buttons = [gr.Button(f"{'✓ ' if step.done else ''}{number}. {step.title}",
                         variant="primary" if step is now else "secondary")
               for number, step in enumerate(steps, 1)]
    if now is None:
        return (*buttons, "**Every step is done:** you have taken a model from data to an export. "
                          "You know the way now — hide this guide, or keep it for its glossary.",
                gr.Button(variant="primary"))
    done = "; ".join(step.evidence for step in steps if step.done)
    text = (f"**Step {steps.index(now) + 1} of {len(steps)} · {now.title}.** {now.todo}"
            + (f"\n\n*Done so far: {done}.*" if done else ""))
    return (*buttons, text, gr.Button(variant="secondary"))


@dataclass
class GuidePanel:
    memory: gr.BrowserState
    panel: gr.Accordion
    show: gr.Button
    steps: list[gr.Button]
    next_step: gr.Markdown
    hide: gr.Button

    @classmethod
    def build(cls) -> GuidePanel:
        """The panel's components, hidden until the page has loaded; call above the tabs (and outside them:
        the browser memory must be in the page for its load event)."""
        memory = browser_memory()
        show = gr.Button("Show the guide", size="sm", visible=False, elem_id="guide-show")
        with gr.Accordion("Your first fine-tune, step by step", open=True, visible=False, elem_id="guide") as panel:
            with gr.Row(elem_id="guide-path"):
                steps = [gr.Button(f"{number}. {title}", size="sm", min_width=80, elem_id=f"guide-step-{key}")
                         for number, (key, title) in enumerate(guide.STEP_TITLES.items(), 1)]
            next_step = gr.Markdown("Reading the workspace…", elem_id="guide-next")
            with gr.Row():
                with gr.Accordion("What do these words mean?", open=False, elem_id="guide-glossary"):
                    gr.Markdown(glossary_markdown(), elem_id="guide-glossary-text")
                hide = gr.Button("Hide this guide", size="sm", scale=0, min_width=150, elem_id="guide-hide")
        return cls(memory, panel, show, steps, next_step, hide)

    @property
    def view(self) -> list[Any]:
        return [*self.steps, self.next_step, self.hide]

    def connect(self, ctx: StudioContext, app: gr.Blocks, tabs: gr.Tabs, pages: list[gr.Tab]) -> None:
        """The events: restore on page load, refresh on every tab selection, hide/show, go to a step's tab."""
        view, quiet = self.view, {"show_progress": "hidden"}

        @friendly
        @ctx.allow("train", otherwise=lambda: tuple(gr.skip() for _ in range(2 + len(view))))
        def restore_guide(saved: dict | None) -> tuple:
            if isinstance(saved, dict) and saved.get("hidden"):
                return gr.Accordion(visible=False), gr.Button(visible=True), *(gr.skip() for _ in view)
            return gr.Accordion(visible=True), gr.Button(visible=False), *render(guide.journey(ctx.workspace))

        @friendly
        @ctx.allow("train", otherwise=lambda: tuple(gr.skip() for _ in view))   # every role switches tabs
        def refresh_guide() -> tuple:
            return render(guide.journey(ctx.workspace))

        @friendly
        @ctx.allow("train")
        def hide_guide() -> tuple:
            return {"hidden": True}, gr.Accordion(visible=False), gr.Button(visible=True)

        @friendly
        @ctx.allow("train")
        def show_guide() -> tuple:
            return ({"hidden": False}, gr.Accordion(visible=True, open=True), gr.Button(visible=False),
                    *render(guide.journey(ctx.workspace)))

        app.load(restore_guide, self.memory, [self.panel, self.show, *view], api_name="guide_restore", **quiet)
        gr.on([page.select for page in pages], refresh_guide, None, view, api_name="guide", **quiet)
        self.hide.click(hide_guide, None, [self.memory, self.panel, self.show], api_name="guide_hide", **quiet)
        self.show.click(show_guide, None, [self.memory, self.panel, self.show, *view], api_name="guide_show", **quiet)
        for key, button in zip(guide.STEP_TITLES, self.steps):
            button.click(friendly(ctx.allow("train")(_opener(key))), None, tabs, api_name=f"guide_go_{key}", **quiet)


def _opener(key: str) -> Any:
    def open_tab() -> gr.Tabs:
        """Select the step's tab (its own select event then refreshes the guide)."""
        return gr.Tabs(selected=key)
    open_tab.__name__ = f"open_{key}_tab"
    return open_tab
