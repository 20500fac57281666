"""Rate tab: annotators rate stored responses blind; an admin creates sessions and reads the results.

Three inner tabs: **Rate responses** (this module: the rating panel a rater works in), **Sessions** (rate_sessions:
create a session, follow its generation job) and **Results** (rate_results: scores, win rates, agreement,
exports, hard examples). The rater's name and session are kept in the browser (gr.BrowserState), so a
reload comes back to where they left off; keyboard shortcuts come from assets/rate_keys.js. Where the studio
has accounts, a rater rates as the logged-in user (the name box shows it and cannot be changed), so an
annotator sees and changes only their own ratings; Sessions and Results are an admin's (manage-ratings).

The panel's events are also the API: /rate_open (session, rater) shows where a rater left off,
/rate_save (session, rater, item, one value per criterion, comment, corrected answer) saves and moves on,
/rate_previous goes back. A view never names the model that wrote a response.
"""

from __future__ import annotations

import html

import gradio as gr

from core.accounts.users import may
from core.errors import ConfigError
from core.rating import queue, ratings, sessions
from core.rating.criteria import COMMENT, CORRECTED, MAX_CRITERIA, Criterion, Level
from core.rating.queue import View
from core.rating.sessions import Session
from core.text import N_
from studio.context import StudioContext
from studio.errors import friendly
from studio.i18n import NO_TRANSLATION, tr
from studio.tabs import rate_results, rate_sessions

KEYS_HELP = ("Keys: **1–9** pick a level of the highlighted criterion (then the next one is highlighted), "
             "**↑ ↓** change criterion, **→** save and go on, **←** back. Typing in a text box is never taken as a key.")
START_HINT = N_("Enter your name and pick a session, then press **Start rating**. You will come back here after a reload.")
# Values of sessions and jobs that are shown as words (tr(value)).
SHOWN_VALUES = (N_("scale"), N_("pairwise"), N_("generating"), N_("ready"), N_("ordinal"), N_("nominal"), N_("queued"),
                N_("running"), N_("finished"), N_("failed"), N_("stopped"), N_("interrupted"))


def session_label(session: Session) -> str:
    """A session as the pickers list it, in the reader's language (Session.label in words)."""
    return tr("{name} · {mode} · {prompts} prompts × {models} models ({state})", name=session.name,
              mode=tr(session.mode), prompts=session.prompts, models=len(session.models), state=tr(session.state))


def option(criterion: Criterion, level: Level) -> str:
    """How a level reads in the rating panel (Criterion.option in the reader's language): the digit key,
    its label and its anchor."""
    key = criterion.levels.index(level) + 1
    return f"{key} · {tr(level.label)}" + (f" — {tr(level.description)}" if level.description else "")


def ready_choices(ctx: StudioContext) -> list[tuple[str, str]]:
    return [(f"{session.name} ({session.id})", session.id) for session in sessions.list_sessions(ctx.workspace)
            if session.ready]


def browser_memory() -> gr.BrowserState:
    """The rater's name and session, kept in the browser. Made at the top of the page, outside every tab:
    a component inside a tab is only mounted when the tab opens, too late for the page's load event. The
    key is fixed (Gradio draws a new one per start otherwise) so the memory outlives a studio restart;
    a name and a session id are nothing to hide."""
    return gr.BrowserState({"rater": "", "session": ""}, storage_key="lora-studio-rater", secret="lora-studio-rater")


def build(ctx: StudioContext, app: gr.Blocks, remembered: gr.BrowserState) -> None:
    sessions_changed = gr.State(0)   # bumped when sessions are created, finish generating or are deleted
    with gr.Tabs(elem_id="rate-tabs") as inner_tabs:
        with gr.Tab("Rate responses", id="rate-rate", elem_id="rate-tab-rate") as rating_tab:
            _rating_panel(ctx, app, remembered)
        with gr.Tab("Sessions", id="rate-sessions", elem_id="rate-tab-sessions") as sessions_tab:
            session_pickers = rate_sessions.build(ctx, sessions_tab, sessions_changed)
        with gr.Tab("Results", id="rate-results", elem_id="rate-tab-results") as results_tab:
            results_picker = rate_results.build(ctx)

    @ctx.allow("manage-ratings")
    def refresh() -> tuple:
        every = [(session_label(session), session.id) for session in sessions.list_sessions(ctx.workspace)]
        return gr.Dropdown(choices=ready_choices(ctx)), *(gr.Dropdown(choices=every) for _ in session_pickers)

    pickers = [results_picker, *session_pickers]   # the rating panel's picker lists itself when focused
    quiet = {"show_progress": "hidden"}
    sessions_changed.change(friendly(refresh), None, pickers, api_name="rate_refresh_sessions", **quiet)
    gr.on([sessions_tab.select, results_tab.select], friendly(refresh), None, pickers, api_name=False, **quiet)

    def pages_for(request: gr.Request) -> tuple:
        """An annotator sees only the rating panel (the handlers refuse the rest in any case)."""
        manages = may(ctx.role(request), "manage-ratings")
        return (gr.Tabs() if manages else gr.Tabs(selected="rate-rate"), gr.Tab(visible=may(ctx.role(request), "rate")),
                gr.Tab(visible=manages), gr.Tab(visible=manages))

    app.load(friendly(pages_for), None, [inner_tabs, rating_tab, sessions_tab, results_tab],
             api_name="rate_pages_for_role", show_progress="hidden")


def _rating_panel(ctx: StudioContext, app: gr.Blocks, remembered: gr.BrowserState) -> None:
    workspace = ctx.workspace
    with gr.Row(equal_height=True):
        rater = gr.Textbox(label="Your name", placeholder="e.g. Dr Li", elem_id="rate-rater", scale=2)
        session = gr.Dropdown([], label="Session", elem_id="rate-session", scale=3, allow_custom_value=True)
    start = gr.Button("Start rating", variant="primary", elem_id="rate-start")
    # The blocks whose words the handlers write (in the reader's language) are left out of the page's relabelling
    # (NO_TRANSLATION), which could otherwise land after them and put back "Loading…" or "Criterion 1".
    status = gr.Markdown("Loading…", elem_id="rate-status",   # the hint, or the rater's item, once the page has loaded
                         elem_classes=[NO_TRANSLATION])
    with gr.Group(visible=False, elem_id="rate-panel") as panel:
        with gr.Row():
            response_a = gr.Chatbot(label="Response", elem_id="rate-response-a", height=340, buttons=["copy"],
                                    elem_classes=[NO_TRANSLATION])
            response_b = gr.Chatbot(label="Response B", elem_id="rate-response-b", height=340, buttons=["copy"],
                                    visible=False)
        scales = [gr.Radio([], label=f"Criterion {slot}", visible=False, elem_id=f"rate-criterion-{slot}",
                           elem_classes=["rate-criterion", NO_TRANSLATION]) for slot in range(1, MAX_CRITERIA + 1)]
        with gr.Row(elem_id="rate-extras"):   # always shown: a collapsed box mounts late and can miss typing
            comment = gr.Textbox(label="Comment (optional)", lines=3, elem_id="rate-comment", scale=1)
            corrected = gr.Textbox(label="Corrected answer (optional)", lines=3, elem_id="rate-corrected", scale=2,
                                   info="The answer it should have been. Low-rated items with one can go back "
                                        "into training as hard examples.")
    with gr.Row(elem_id="rate-nav"):
        back = gr.Button("← Previous", elem_id="rate-prev", interactive=False)
        save = gr.Button("Save and next →", variant="primary", elem_id="rate-next", interactive=False)
    gr.Markdown(KEYS_HELP, elem_id="rate-keys-help")
    item = gr.Number(None, precision=0, visible=False, elem_id="rate-item")
    listed = gr.State([])   # the ready sessions this page lists, so focusing the picker redraws it only on news
    shown = [status, panel, response_a, response_b, *scales, comment, corrected, item, back, save]

    @friendly
    @ctx.allow("rate", otherwise=lambda: tuple(gr.skip() for _ in range(3 + len(shown))))
    def restore(saved: dict | None, request: gr.Request) -> tuple:
        """A (re)loaded page: the remembered name and session, and where this rater left off; with nothing
        remembered, the hint (what was typed meanwhile is left alone). With accounts, the name is the login."""
        saved = saved or {}
        logged_in = ctx.user_name(request, "") if ctx.accounts is not None else ""
        name = logged_in or saved.get("rater", "")
        name_box = gr.Textbox(value=logged_in, interactive=False) if logged_in else name or gr.skip()
        choices = ready_choices(ctx)
        chosen = saved.get("session") if saved.get("session") in {value for _, value in choices} else None
        if chosen and name:
            return (name_box, gr.Dropdown(choices=choices, value=chosen), choices,
                    *render(queue.current(workspace, chosen, name)))
        return (name_box, gr.Dropdown(choices=choices), choices, tr(START_HINT), *(gr.skip() for _ in shown[1:]))

    @friendly
    @ctx.allow("rate")
    def open_session(session_id: str | None, rater_name: str, request: gr.Request) -> tuple:
        if not session_id:
            raise ConfigError("No session chosen.", "Pick a session from the list (an admin creates them under Sessions).")
        view = queue.current(workspace, session_id, ctx.user_name(request, rater_name))
        return (*render(view), {"rater": view.rater, "session": session_id})

    @friendly
    @ctx.allow("rate")
    def save_and_next(session_id: str, rater_name: str, item_number: float | None, criterion_1: str | None,
                      criterion_2: str | None, criterion_3: str | None, criterion_4: str | None, comment_text: str,
                      corrected_answer: str, request: gr.Request) -> tuple:
        rater_name = ctx.user_name(request, rater_name)
        chosen = (criterion_1, criterion_2, criterion_3, criterion_4)
        given = {c.name: value for c, value in zip(sessions.ready(workspace, session_id).criteria, chosen)}
        ratings.submit(workspace, session_id, int(item_number or 0), rater_name,
                       {**given, COMMENT: comment_text, CORRECTED: corrected_answer})
        return render(queue.following(workspace, session_id, rater_name, int(item_number or 0)))

    @friendly
    @ctx.allow("rate")
    def go_back(session_id: str, rater_name: str, item_number: float | None, request: gr.Request) -> tuple:
        rater_name = ctx.user_name(request, rater_name)
        if not item_number:
            return render(queue.last(workspace, session_id, rater_name))
        return render(queue.preceding(workspace, session_id, rater_name, int(item_number)))

    @ctx.allow("rate", otherwise=lambda: (gr.skip(), gr.skip()))
    def list_ready(known: list) -> tuple:
        """Sessions that became ready since the page listed them (redrawing the list only then, so a
        click on an option is never lost to a redraw)."""
        choices = ready_choices(ctx)
        if [list(choice) for choice in choices] == [list(choice) for choice in known]:
            return gr.skip(), gr.skip()
        return gr.Dropdown(choices=choices), choices

    app.load(restore, remembered, [rater, session, listed, *shown], api_name="rate_restore", show_progress="hidden")
    session.focus(friendly(list_ready), listed, [session, listed], api_name="rate_list_ready", show_progress="hidden")
    gr.on([start.click, rater.submit], open_session, [session, rater], [*shown, remembered], api_name="rate_open")
    save.click(save_and_next, [session, rater, item, *scales, comment, corrected], shown, api_name="rate_save")
    back.click(go_back, [session, rater, item], shown, api_name="rate_previous")


def render(view: View) -> tuple:
    """The panel's updates for a view: the item's conversation(s), one radio per criterion with anchored
    levels and the rater's earlier choices, navigation; or the 'all done' message."""
    session, progress = view.session, view.progress
    bar = (f'<div class="rate-progress" role="progressbar" aria-valuenow="{progress.rated}" aria-valuemax="{progress.total}">'
           f'<div class="rate-progress-fill" style="width:{progress.rated / max(1, progress.total):.1%}"></div></div>')
    counts = tr("{rated} rated · {remaining} to go", rated=progress.rated, remaining=progress.remaining)
    if view.item is None:
        message = tr("**All done, {rater}!** You have rated every item there is for you in *{session}* ({counts}). "
                     "Thank you. Use ← Previous to look back.", rater=html.escape(view.rater),
                     session=html.escape(session.name), counts=counts)
        return (bar + "\n\n" + message, gr.Group(visible=False), [], gr.Chatbot([], visible=False),
                *(gr.Radio(visible=False) for _ in range(MAX_CRITERIA)), "", "", 0,
                gr.Button(interactive=progress.rated > 0), gr.Button(interactive=False))
    found = view.item
    pairwise = len(found.responses) == 2
    system = next((m["content"] for m in found.messages if m["role"] == "system"), "")
    heading = (tr("**Item {number}** of your {total} in *{session}* · {counts}", number=view.position + 1,
                  total=progress.total, session=html.escape(session.name), counts=counts)
               + ("\n\n" + tr("The model was told: *{system}*", system=html.escape(system)) if system else ""))
    conversation = [m for m in found.messages if m["role"] != "system"]
    scales = []
    for slot in range(MAX_CRITERIA):
        if slot < len(session.criteria):
            criterion = session.criteria[slot]
            scales.append(gr.Radio([(option(criterion, level), level.value) for level in criterion.levels],
                                   value=view.values.get(criterion.name), label=tr(criterion.label),
                                   info=tr(criterion.question), visible=True))
        else:
            scales.append(gr.Radio([], value=None, visible=False))
    return (bar + "\n\n" + heading, gr.Group(visible=True),
            gr.Chatbot([*conversation, {"role": "assistant", "content": found.responses[0]}],
                       label=tr("Response A") if pairwise else tr("Response")),
            gr.Chatbot([*conversation, {"role": "assistant", "content": found.responses[-1]}], visible=pairwise),
            *scales, view.values.get(COMMENT, ""), view.values.get(CORRECTED, ""), found.number,
            gr.Button(interactive=view.position > 0), gr.Button(interactive=True))

