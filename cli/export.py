"""`lora-studio export`: a run's adapter merged, zipped, quantised or converted to GGUF (core.export), in
the foreground with its progress printed, as the Export tab's job does it."""

from __future__ import annotations

import argparse


def add_commands(commands: argparse._SubParsersAction, workspace_flag: argparse.ArgumentParser) -> None:
    from core.export.formats import FORMATS

    export = commands.add_parser(
        "export", parents=[workspace_flag], help="export a run: merged model, adapter zip, int8, 4-bit or GGUF",
        description="Each export is checked before it counts as done (merged: logits equal the adapter's; "
                    "quantised: perplexity; GGUF: same next tokens) and carries a model card (README.md).")
    export.add_argument("run", nargs="?", metavar="RUN_ID", help="the run whose adapter to export")
    export.add_argument("--format", default="merged", choices=list(FORMATS),
                        help="; ".join(f"{item.key}: {item.description}" for item in FORMATS.values()))
    export.add_argument("--name", default="", help="a name for the export's folder (default RUN_ID-FORMAT)")
    export.add_argument("--list", action="store_true", help="list the exports in the workspace instead")
    export.set_defaults(handler=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from core.errors import ConfigError
    from core.export import records
    from core.jobs import worker
    from core.system import job_status
    from core.workspace import Workspace

    workspace = Workspace.open(args.workspace)
    if args.list:
        for record in records.list_exports(workspace):
            state = "complete" if record.complete else job_status.read(job_status.JobFolder(record.folder)).state
            print(f"{record.export_id}\t{record.format}\t{record.run_id}\t{state}\t{record.folder}")
        return 0
    if not args.run:
        raise ConfigError("Name the run to export.", "lora-studio export RUN_ID --format merged (or --list).")
    folder, title, settings = records.new_export(workspace, args.run, args.format, args.name)
    job = job_status.JobFolder(folder)
    job_status.create(job, records.KIND, title, settings)
    print(worker.run_other_job(workspace, job, echo=lambda line: print(line, flush=True)))
    print(folder)
    return 0
