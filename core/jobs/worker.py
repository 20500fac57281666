"""The job process: one long job (a training run, an evaluation, an export…) from start to end, holding the
device lock the whole time.

    python -m core.jobs.worker train RUN_ID --workspace DIR [--resume] [--processes N]
    python -m core.jobs.worker job FOLDER --workspace DIR     (evaluation, export…: FOLDER/job.json says)

The studio starts this in a session of its own (core.jobs.runner.JobManager), so a run outlives the
browser, a crash of the studio and a studio restart; `lora-studio train` runs the same `train_run` in the
foreground. Everything a job produces goes into its folder (core.runs.records for training runs,
core.system.job_status for the other kinds).

With N processes, this process holds the lock and supervises `accelerate launch`, whose N ranks run
`python -m core.jobs.worker train RUN_ID --rank` (gloo on a CPU, one process per GPU with CUDA). The lock
is taken before torch is imported, so the studio's start-up handshake is quick.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import socket
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from typing import Any

from core.config import RunConfig
from core.errors import StudioError, classify
from core.progress import Cancelled, Progress
from core.runs import records
from core.system.device_lock import DeviceLock
from core.system.job_status import JobFolder, JobRecorder
from core.text import N_
from core.workspace import ASSETS_DIR, RunFolder, Workspace, now_iso, read_json

Echo = Callable[[str], None]


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def train_run(workspace: Workspace, folder: RunFolder, resume: bool = False, processes: int = 1,
              echo: Echo | None = None) -> dict[str, Any]:
    """Train the run in `folder` on `processes` processes, holding the device lock; returns its summary.
    SIGINT/SIGTERM ask for a clean stop (adapter saved); a second one aborts. A failure is classified,
    written to status.json and raised as a StudioError."""
    recorder = records.RunRecorder(folder, echo=echo)
    try:
        with DeviceLock(workspace).hold(f"training run '{folder.run_id}'", job=workspace.relative(folder.root)):
            recorder.update(state="queued", processes=processes, message=N_("Starting"))
            with stop_on_signals(echo) as stop_event:
                if processes == 1:
                    return run_job(folder, workspace, stop_event, resume, echo)
                return _supervise_ranks(workspace, folder, resume, processes, stop_event)
    except StudioError as error:
        if records.read_status(folder).state != "failed":  # not recorded yet: failed before training began
            recorder.fail(error)
            records.index(workspace, folder)
        raise


def run_job(folder: RunFolder, workspace: Workspace, stop_event: threading.Event | None = None,
            resume: bool = False, echo: Echo | None = None) -> dict[str, Any]:
    """Train the run in `folder` in this process and record how it ended. A failure is classified (out of
    memory, data, config, model load, NaN…), written to status.json with its fix, and raised."""
    from core.training import train

    recorder = records.RunRecorder(folder, enabled=is_main_process(), echo=echo)
    if resume and recorder.enabled:
        folder.stop_request.unlink(missing_ok=True)  # the request that stopped it last time
    try:
        summary = train.train(records.load_config(folder), folder.root, workspace, stop_event, resume, echo)
    except KeyboardInterrupt:  # a second Ctrl-C: no adapter, but resumable from the last checkpoint
        recorder.update(state="interrupted", message=N_("Aborted; resume continues from the last checkpoint."))
        raise
    except BaseException as error:  # noqa: BLE001 - every failure ends up in status.json
        failure = classify(error)
        if not isinstance(error, StudioError) and recorder.enabled:
            with folder.log.open("a", encoding="utf-8") as handle:
                handle.write("".join(traceback.format_exception(error)))
        recorder.fail(failure)
        raise failure from error
    finally:
        if recorder.enabled:
            records.index(workspace, folder)
    return summary


def run_in_foreground(workspace: Workspace, config: RunConfig | None = None, resume_id: str | None = None,
                      changes: Mapping[str, Any] | None = None, processes: int = 1, echo: Echo = print) -> RunFolder:
    """`lora-studio train`: a new run for `config`, or run `resume_id` continued with `changes`, trained
    here (on `processes` processes). Also what each rank runs when a user starts the CLI under
    `accelerate launch` / `torchrun` themselves."""
    from core.jobs import prepare  # here, not at the top: the job process takes the lock before torch loads

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return _run_as_launched_rank(workspace, config, resume_id, changes, echo)
    folder = prepare.resumed_run(workspace, resume_id, changes) if resume_id else \
        prepare.new_run(workspace, _given(config), processes)
    echo(f"Run {folder.run_id}: {folder.root}")
    train_run(workspace, folder, bool(resume_id), processes, echo)
    return folder


def _run_as_launched_rank(workspace: Workspace, config: RunConfig | None, resume_id: str | None,
                          changes: Mapping[str, Any] | None, echo: Echo) -> RunFolder:
    """One rank of a user's own `accelerate launch`: rank 0 takes the device lock and prepares the run
    folder, and every rank learns the outcome (the run's id, or the error) before training together."""
    import torch
    from accelerate import PartialState
    from accelerate.utils import broadcast_object_list

    from core.jobs import prepare

    state = PartialState(cpu=not torch.cuda.is_available())  # joins the process group (gloo without CUDA)
    with ExitStack() as held:
        outcome: list[tuple[str, str]] = [("", "")]   # (run id, error message)
        if state.is_main_process:
            try:
                folder = prepare.resumed_run(workspace, resume_id, changes) if resume_id else \
                    prepare.new_run(workspace, _given(config), state.num_processes)
                held.enter_context(DeviceLock(workspace).hold(f"training run '{folder.run_id}'",
                                                              job=workspace.relative(folder.root)))
                outcome = [(folder.run_id, "")]
                echo(f"Run {folder.run_id}: {folder.root}")
            except StudioError as error:
                outcome = [("", str(error))]
        broadcast_object_list(outcome)
        run_id, failure = outcome[0]
        if failure:
            raise StudioError(failure)
        folder = workspace.run_folder(run_id)
        with stop_on_signals(echo) as stop_event:
            run_job(folder, workspace, stop_event, bool(resume_id), echo if state.is_main_process else None)
    return folder


def _given(config: RunConfig | None) -> RunConfig:
    if config is None:
        raise StudioError("No run config given.", "Pass a config file, a --preset, or --resume RUN_ID.")
    return config


@contextmanager
def stop_on_signals(echo: Echo | None = None) -> Iterator[threading.Event]:
    """An event set by the first SIGINT/SIGTERM (stop after the current step); the second one aborts."""
    stop_event = threading.Event()

    def request_stop(signum: int, frame: Any) -> None:
        if stop_event.is_set():
            raise KeyboardInterrupt
        stop_event.set()
        if echo:
            echo("Stopping after the current step (press Ctrl-C again to abort)…")

    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield stop_event
        return
    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop_event
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _supervise_ranks(workspace: Workspace, folder: RunFolder, resume: bool, processes: int,
                     stop_event: threading.Event) -> dict[str, Any]:
    """Run the training on `processes` ranks under `accelerate launch` and wait for them; a stop request
    here becomes the run folder's STOP file, which every rank honours between steps."""
    launched = subprocess.Popen(rank_command(workspace, folder, resume, processes))  # same output as this one
    try:
        while launched.poll() is None:
            if stop_event.wait(0.5):
                folder.stop_request.touch()
    except KeyboardInterrupt:  # aborted: take the ranks down with this process
        launched.kill()
        launched.wait()
        raise
    status = records.read_status(folder)
    if status.state == "failed" and status.error:
        raise StudioError(status.error.get("message", status.message), status.error.get("fix", ""))
    if launched.returncode != 0 or status.active:
        raise StudioError(f"The {processes} training processes ended with exit code {launched.returncode}.",
                          f"See {folder.job_output.name} in the run folder for what they printed.")
    return read_json(folder.summary, {}) or {}


# Long jobs besides training: the module that runs each kind. Each has
#     run(workspace: Workspace, folder: Path, settings: dict, progress: core.progress.Progress) -> str
# which writes its results into `folder` and returns a one-line summary. Imported only once the device
# lock is held.
JOB_KINDS: dict[str, str] = {
    "evaluate": "core.evaluation.job",
    "export": "core.export.job",
    "generate-responses": "core.rating.generation",   # the responses of a rating session
}


def run_other_job(workspace: Workspace, folder: JobFolder, echo: Echo | None = None) -> str:
    """Run the job described by `folder`'s job.json, holding the device lock, and record how it ended."""
    settings = read_json(folder.spec, {}) or {}
    recorder = JobRecorder(folder)
    try:
        kind = settings.get("kind", "")
        if kind not in JOB_KINDS:
            raise StudioError(f"Unknown kind of job '{kind}' in {folder.spec}.", f"Known kinds: {', '.join(JOB_KINDS)}.")
        with DeviceLock(workspace).hold(settings.get("title", kind), job=workspace.relative(folder.root)), \
                stop_on_signals(echo) as stop_event:
            recorder.update(state="running", started=now_iso(), message=N_("Starting"))
            recorder.log(f"Started: {settings.get('title', kind)}")
            progress = Progress(report=recorder.progress, log=_log_to(recorder, echo),
                                stop_requested=lambda: stop_event.is_set() or folder.stop_request.exists())
            summary = importlib.import_module(JOB_KINDS[kind]).run(workspace, folder.root, settings, progress)
        recorder.update(state="finished", finished=now_iso(), eta_s=None, message=summary)
        recorder.log(f"Finished: {summary}")
        return summary
    except Cancelled:
        recorder.update(state="stopped", finished=now_iso(), eta_s=None, message=N_("Cancelled on request."))
        recorder.log("Cancelled on request")
        raise
    except BaseException as error:  # noqa: BLE001 - every failure ends up in status.json
        title = settings.get("title") or settings.get("kind") or "The job"
        failure = classify(error, title[0].upper() + title[1:])
        if not isinstance(error, StudioError):
            recorder.log("".join(traceback.format_exception(error)))
        recorder.fail(failure)
        raise failure from error


def _log_to(recorder: JobRecorder, echo: Echo | None) -> Echo:
    def log(line: str) -> None:
        recorder.log(line)
        if echo:
            echo(line)
    return log


def rank_command(workspace: Workspace, folder: RunFolder, resume: bool, processes: int) -> list[str]:
    """`accelerate launch` of `processes` ranks of this module: one per GPU with CUDA, gloo on a CPU."""
    import torch

    config_name = "multi-gpu-ddp.yaml" if torch.cuda.is_available() else "cpu-2-processes.yaml"
    with socket.socket() as probe:  # a free port for the ranks to meet on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return [sys.executable, "-m", "accelerate.commands.launch",
            "--config_file", str(ASSETS_DIR / "accelerate" / config_name),
            "--num_processes", str(processes), "--main_process_port", str(port),
            "-m", "core.jobs.worker", "train", folder.run_id, "--workspace", str(workspace.root), "--rank",
            *(["--resume"] if resume else [])]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.jobs.worker", description=__doc__.split("\n")[0])
    parser.add_argument("kind", choices=["train", "job"], help="a training run, or another job (its job.json says which)")
    parser.add_argument("target", help="the run's id (train), or the job's folder inside the workspace (job)")
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--rank", action="store_true", help="one rank under accelerate launch (no lock)")
    args = parser.parse_args(argv)
    workspace = Workspace.open(args.workspace)
    echo = print if is_main_process() else None
    try:
        if args.kind == "job":
            run_other_job(workspace, JobFolder(workspace.root / args.target), echo)
            return 0
        folder = workspace.run_folder(args.target)
        if args.rank:
            with stop_on_signals() as stop_event:
                run_job(folder, workspace, stop_event, args.resume, echo)
        else:
            train_run(workspace, folder, args.resume, args.processes, echo)
    except StudioError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
