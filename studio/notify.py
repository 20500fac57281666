"""A toast when background work that a page follows comes to an end, wherever in the studio the user is
(the page's poll notices the end once, and says it in the reader's language)."""

from __future__ import annotations

import gradio as gr

from core.system.job_status import JobStatus
from studio.i18n import tr


def job_ended(work: str, state: str, message: str = "", error: dict[str, str] | None = None) -> None:
    """`work` (English words: "evaluation of run 'faq'") came to an end in `state`. Finished: a short note;
    stopped on request: a short warning; failed or interrupted: a warning with the reason that stays until
    closed."""
    work = tr(work)
    if state == "finished":
        gr.Info(tr("Done: {work}.", work=work), title=tr("Finished"))
    elif state == "stopped":
        gr.Warning(tr("Stopped on request: {work}.", work=work), title=tr("Stopped"))
    else:
        error = error or {}
        reason = " ".join(tr(part) for part in (error.get("message", message), error.get("fix", "")) if part)
        gr.Warning(tr("{work} did not finish: {reason}", work=work, reason=reason), duration=None,
                   title=tr("Stopped"))


def background_job_ended(status: JobStatus) -> None:
    job_ended(status.title, status.state, status.message, status.error)
