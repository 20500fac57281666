"""The job that answers a session's prompts with each of its models, once, so raters rate stored responses
and no model needs to be loaded while they do.

    run(workspace, folder, {"session": ID}, progress)   # as the job runner calls it ("generate-responses")
    generate(workspace, session_id, progress)            # the same, from the CLI or a test

Each model answers every prompt the way it answers in use: a run's adapter with the run's chat template,
system prompt and reply settings (generation.*), and the session's reply limit when it has one. Models
that share a base are answered with that base loaded once (core.inference.answering). Sampling is
seeded by the session's seed, so generating again gives the same responses. Each model's responses are
appended to responses.jsonl when it finishes; a cancelled or crashed job, started again, answers only
with the models not done yet.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.inference import choices
from core.inference.answering import Answerer
from core.progress import QUIET, Progress
from core.rating import prompts, sessions
from core.text import N_
from core.workspace import Workspace

KIND = "generate-responses"   # its name in core.jobs.worker.JOB_KINDS
BATCH_SIZE = 8


def run(workspace: Workspace, folder: Path, settings: dict[str, Any], progress: Progress) -> str:
    return generate(workspace, settings["session"], progress, int(settings.get("batch_size", BATCH_SIZE)))


def title(session: sessions.Session) -> str:
    """The job's name in words, as the device lock and the job list show it."""
    return N_(f"generating responses for rating session '{session.name}'")


def generate(workspace: Workspace, session_id: str, progress: Progress = QUIET, batch_size: int = BATCH_SIZE) -> str:
    """Answer every prompt of the session with each model not done yet, then open the session for rating."""
    import torch

    session = sessions.get(workspace, session_id)
    folder = workspace.rating_folder(session_id)
    conversations = [prompt.messages for prompt in prompts.read_prompts(folder)]
    answered = prompts.read_responses(folder)
    to_do = [choices.resolve(workspace, key) for key in session.models
             if any((number, key) not in answered for number in range(1, len(conversations) + 1))]
    total = len(to_do) * len(conversations)
    answerer: Answerer | None = None
    for index, choice in enumerate(sorted(to_do, key=lambda c: c.base)):   # one base loaded at a time
        progress.check()
        if answerer is None or not answerer.serves(choice):
            answerer = None
            gc.collect()
            progress.report(index * len(conversations), total, N_(f"Loading {choice.base}"))
            answerer = Answerer(workspace, choice.base)
        within = Progress(report=_shifted(progress, index * len(conversations), total),
                          stop_requested=progress.stop_requested, log=progress.log)
        settings = choice.generation
        if session.max_new_tokens:
            settings = settings.model_copy(update={"max_new_tokens": session.max_new_tokens})
        torch.manual_seed(session.seed)
        answers = answerer.answer(conversations, choice, settings, batch_size=batch_size, progress=within)
        prompts.append_responses(folder, choice.key, [answer.text for answer in answers],
                                 [{"new_tokens": answer.new_tokens, "seconds": round(answer.seconds, 3)} for answer in answers])
        progress.log(f"{choice.label}: {len(answers)} responses")
    sessions.complete(workspace, session_id)
    return N_(f"{len(conversations)} prompts answered by {len(session.models)} model(s); "
              f"session '{session.name}' is ready to rate.")


def _shifted(progress: Progress, offset: int, total: int) -> Callable[[int, int, str], None]:
    """One model's progress (done of its prompts) as progress of the whole job (done of every answer)."""
    def report(done: int, _: int, message: str) -> None:
        progress.report(offset + done, total, message)
    return report
