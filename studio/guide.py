"""The first-run guide above the tabs: the path Data → Configure → Train → Evaluate → Rate → Chat → Export with
the step to do now highlighted, one sentence on what to do in it, a button per step that opens its tab, and
the glossary ("What do these words mean?", from core.glossary).

Only roles that may train see it (it starts hidden; the page-load event shows it to them). It reads the
workspace through core.guide when the page loads and whenever a tab is selected — no polling. "Hide this
guide" keeps it hidden in this browser (gr.BrowserState with a fixed key, like the Rate tab's memory);
"Show the guide" brings it back.

Its words follow the reader's language: the step buttons and the sentence are translated when they are drawn,
and the glossary is drawn in the reader's language on page load, when the guide is shown and when the
language switch moves. They are marked NO_TRANSLATION: the page's relabelling of static texts, which runs on
the same page load, must not draw over what the guide drew (and the glossary is translated term by term).

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
from studio.i18n import LANGUAGES, NO_TRANSLATION, language, tr


def browser_memory() -> gr.BrowserState:
    """Whether this browser hid the guide. A fixed key (Gradio draws a new one per start otherwise), so a
    hidden guide stays hidden after a studio restart; the flag is nothing to hide."""
    return gr.BrowserState({"hidden": False}, storage_key="lora-studio-guide", secret="lora-studio-guide")


def glossary_markdown() -> str:
    """The glossary in the language of the request being handled (English when none)."""
    return "\n".join(f"- **{tr(term)}** — {tr(meaning)}" for term, meaning in glossary.TERMS.items())


def step_label(number: int, title: str, done: bool = False) -> str:
    """A step's button: "✓ 2. Configure", its title translated (the number and the tick need no words)."""
    return f"{'✓ ' if done else ''}{number}. {tr(title)}"


def render(steps: list[guide.Step]) -> tuple:
    """One button per step (✓ when done, the current one highlighted), the sentence, the hide button."""
    now = guide.current(steps)
    buttons = [gr.Button(step_label(number, step.title, step.done), variant="primary" if step is now else "secondary")
               for number, step in enumerate(steps, 1)]
    if now is None:
        return (*buttons, tr("**Every step is done:** you have taken a model from data to an export. "
                             "You know the way now — hide this guide, or keep it for its glossary."),
                gr.Button(variant="primary"))
    done = tr("; ").join(tr(step.evidence) for step in steps if step.done)
    text = tr("**Step {number} of {count} · {title}.** {todo}", number=steps.index(now) + 1, count=len(steps),
              title=tr(now.title), todo=tr(now.todo))
    if done:
        text += "\n\n" + tr("*Done so far: {done}.*", done=done)
    return (*buttons, text, gr.Button(variant="secondary"))


@dataclass
class GuidePanel:
    memory: gr.BrowserState
    panel: gr.Accordion
    show: gr.Button
    steps: list[gr.Button]
    next_step: gr.Markdown
    hide: gr.Button
    glossary: gr.Markdown

    @classmethod
    def build(cls) -> GuidePanel:
        """The panel's components, hidden until the page has loaded; call above the tabs (and outside them:
        the browser memory must be in the page for its load event)."""
        memory = browser_memory()
        show = gr.Button("Show the guide", size="sm", visible=False, elem_id="guide-show")
        with gr.Accordion("Your first fine-tune, step by step", open=True, visible=False, elem_id="guide") as panel:
            with gr.Row(elem_id="guide-path"):
                # Drawn by the guide's own events in the reader's language (render), so the page's relabelling
                # of static texts, which runs on the same page load, must not draw over them.
                steps = [gr.Button(step_label(number, title), size="sm", min_width=80, elem_id=f"guide-step-{key}",
                                   elem_classes=[NO_TRANSLATION])
                         for number, (key, title) in enumerate(guide.STEP_TITLES.items(), 1)]
            next_step = gr.Markdown("Reading the workspace…", elem_id="guide-next", elem_classes=[NO_TRANSLATION])
            with gr.Row():
                with gr.Accordion("What do these words mean?", open=False, elem_id="guide-glossary"):
                    words = gr.Markdown(glossary_markdown(), elem_id="guide-glossary-text",
                                        elem_classes=[NO_TRANSLATION])
                hide = gr.Button("Hide this guide", size="sm", scale=0, min_width=150, elem_id="guide-hide")
        return cls(memory, panel, show, steps, next_step, hide, words)

    @property
    def view(self) -> list[Any]:
        return [*self.steps, self.next_step, self.hide]

    def connect(self, ctx: StudioContext, app: gr.Blocks, tabs: gr.Tabs, pages: list[gr.Tab]) -> None:
        """The events: restore on page load, refresh on every tab selection, hide/show, go to a step's tab."""
        view, quiet = self.view, {"show_progress": "hidden"}

        @friendly
        @ctx.allow("train", otherwise=lambda: tuple(gr.skip() for _ in range(3 + len(view))))
        def restore_guide(saved: dict | None) -> tuple:
            words = glossary_markdown() if language.get() != "en" else gr.skip()   # the page is built in English
            if isinstance(saved, dict) and saved.get("hidden"):
                return gr.Accordion(visible=False), gr.Button(visible=True), *(gr.skip() for _ in view), words
            return (gr.Accordion(visible=True), gr.Button(visible=False), *render(guide.journey(ctx.workspace)),
                    words)

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
                    *render(guide.journey(ctx.workspace)), glossary_markdown())

        @friendly
        @ctx.allow("train", otherwise=lambda: tuple(gr.skip() for _ in range(1 + len(view))))
        def relabel_guide(lang: str | None) -> tuple:
            """The guide in the language just chosen (the switch's cookie reaches later requests only)."""
            language.set(lang if lang in LANGUAGES else "en")
            return (*render(guide.journey(ctx.workspace)), glossary_markdown())

        app.load(restore_guide, self.memory, [self.panel, self.show, *view, self.glossary], api_name="guide_restore",
                 **quiet)
        gr.on([page.select for page in pages], refresh_guide, None, view, api_name="guide", **quiet)
        self.hide.click(hide_guide, None, [self.memory, self.panel, self.show], api_name="guide_hide", **quiet)
        self.show.click(show_guide, None, [self.memory, self.panel, self.show, *view, self.glossary],
                        api_name="guide_show", **quiet)
        # The page's language switch (studio.app, elem_id "language") relabels the static texts; the guide's
        # sentence and glossary are drawn here, so they follow it too.
        switch = next((block for block in app.blocks.values() if getattr(block, "elem_id", None) == "language"
                       and isinstance(block, gr.Radio)), None)
        if switch is not None:
            switch.input(relabel_guide, switch, [*view, self.glossary], api_name="guide_language", **quiet)
        for key, button in zip(guide.STEP_TITLES, self.steps):
            button.click(friendly(ctx.allow("train")(_opener(key))), None, tabs, api_name=f"guide_go_{key}", **quiet)


def _opener(key: str) -> Any:
    def open_tab() -> gr.Tabs:
        """Select the step's tab (its own select event then refreshes the guide)."""
        return gr.Tabs(selected=key)
    open_tab.__name__ = f"open_{key}_tab"
    return open_tab
