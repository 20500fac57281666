"""`lora-studio`: the command line. Each subcommand calls the same core functions as the UI.

Errors a user can cause print one line (`error: …`) and exit 2 for bad input, 1 for other failures;
never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from types import ModuleType

# Offline by default: these must be set before gradio or huggingface_hub are imported anywhere.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from cli import chat as chat_commands  # noqa: E402
from cli import evaluate as evaluate_commands  # noqa: E402
from cli import export as export_commands  # noqa: E402
from cli import (  # noqa: E402
    models,
    ratings,  # noqa: E402
    users,
)
from cli import serve as serve_commands  # noqa: E402
from core import config as run_config  # noqa: E402
from core.errors import ConfigError, DataError, DiskFullError, StudioError, classify  # noqa: E402
from core.workspace import Workspace  # noqa: E402

EXIT_FAILURE, EXIT_BAD_INPUT = 1, 2

# Areas with commands of their own live in cli/<area>.py, each with
#     add_commands(commands, workspace_flag): add subparsers, each with set_defaults(handler=...)
AREAS: tuple[ModuleType, ...] = (users, evaluate_commands, models, chat_commands, export_commands, serve_commands,
                                 ratings)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own errors also exit 2, in one line
        self.exit(EXIT_BAD_INPUT, f"error: {message} (see '{self.prog} --help')\n")


def _add_config_inputs(parser: argparse.ArgumentParser, file_required: bool) -> None:
    parser.add_argument("config_file", nargs=None if file_required else "?", type=Path,
                        help="a run config YAML file")
    parser.add_argument("--preset", choices=sorted(run_config.PRESETS), help="start from a preset")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                        help="override one field, e.g. --set lora.r=16 (repeatable; value read as YAML)")


def build_parser() -> argparse.ArgumentParser:
    workspace_flag = _Parser(add_help=False)
    workspace_flag.add_argument("--workspace", help="workspace folder (default ./workspace or $LORA_STUDIO_HOME)")

    parser = _Parser(prog="lora-studio", description="LoRA Studio: fine-tune chat models with LoRA, no code needed.",
                     parents=[workspace_flag])
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)

    ui = commands.add_parser("ui", parents=[workspace_flag], help="start the studio in the browser (default)")
    ui.set_defaults(handler=cmd_ui)
    ui.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    ui.add_argument("--port", type=int, default=7860)
    ui.add_argument("--users", type=Path, help="a users file (lora-studio users add): log-ins with roles")
    ui.add_argument("--max-upload-mb", type=int, default=512, help="largest dataset upload in MB (default 512)")
    ui.add_argument("--allow-path", type=Path, action="append", default=[], metavar="FOLDER",
                    help="with --users: a folder beside the workspace that model and data paths typed into the UI "
                         "may point into (repeatable)")
    ui.add_argument("--open-without-accounts", action="store_true",
                    help="listen on a network address without --users (anyone who reaches the port can do everything)")

    commands.add_parser("prepare", parents=[workspace_flag],
                        help="convert the default model and load the demo dataset (done once)").set_defaults(handler=cmd_prepare)
    doctor = commands.add_parser("doctor", parents=[workspace_flag], help="report versions, hardware and workspace state")
    doctor.add_argument("--repair", action="store_true",
                        help="rebuild the indexes from the folders and remove leftovers of interrupted writes")
    doctor.set_defaults(handler=cmd_doctor)

    show = commands.add_parser("config", help="print a complete, validated run config as YAML")
    show.set_defaults(handler=cmd_config)
    _add_config_inputs(show, file_required=False)

    train = commands.add_parser("train", parents=[workspace_flag],
                                help="train a LoRA adapter, printing progress; the run folder is the last line")
    train.set_defaults(handler=cmd_train)
    _add_config_inputs(train, file_required=False)
    train.add_argument("--resume", metavar="RUN_ID",
                       help="continue a stopped, failed or interrupted run from its last checkpoint; --set may "
                            "change train.learning_rate, train.max_steps, train.eval_steps, train.save_steps…")
    train.add_argument("--processes", type=int, default=1, metavar="N",
                       help="train on N processes (one per GPU; on a CPU they share the cores) via accelerate")

    estimate = commands.add_parser("estimate", parents=[workspace_flag],
                                   help="pre-flight figures (parameters, adapter size, memory, time) without loading weights")
    estimate.set_defaults(handler=cmd_estimate)
    _add_config_inputs(estimate, file_required=False)
    estimate.add_argument("--json", action="store_true", help="print the figures as one JSON object")

    data_command = commands.add_parser("data", help="check or clean a dataset file (.jsonl, .json or .csv)")
    data_command.set_defaults(handler=cmd_data)
    data_actions = data_command.add_subparsers(dest="data_action", required=True, parser_class=_Parser)
    for action, action_help in (("check", "validate a file and report what cleaning would do; writes nothing"),
                                ("clean", "clean a file into --out DIR: data.jsonl, rejects.jsonl, report.json")):
        step = data_actions.add_parser(action, parents=[workspace_flag], help=action_help)
        step.add_argument("file", type=Path, help="the dataset file")
        if action == "clean":
            step.add_argument("--out", type=Path, required=True, help="folder for data.jsonl, rejects.jsonl, report.json")
        step.add_argument("--json", action="store_true", help="print the report as one JSON object")
        step.add_argument("--max-tokens", type=int, default=2048, help="longest conversation in tokens (default 2048)")
        step.add_argument("--model", default="default", help="model whose tokenizer and chat template count tokens")
        step.add_argument("--contradictions", default="keep-all", metavar="keep-all|keep-first|drop-all",
                          help="what to do with each group of contradicting rows (default keep-all: flagged, kept)")
        step.add_argument("--near-threshold", type=float, default=0.6, help="near-duplicate similarity, 0-1 (default 0.6)")
        step.add_argument("--skip", action="append", default=[], metavar="STEP",
                          help="switch a step off (repeatable): low_quality, too_long, duplicates, near_duplicates, "
                               "contradictions, pii")
        step.add_argument("--mask-pii", action="store_true", help="replace e-mails, phone and ID numbers by placeholders")
        for role in ("prompt", "response", "system"):
            step.add_argument(f"--{role}-column", help=f"CSV column holding the {role}")
    for area in AREAS:
        area.add_commands(commands, workspace_flag)
    return parser


def _workspace(args: argparse.Namespace) -> Workspace:
    return Workspace.open(args.workspace)


def cmd_config(args: argparse.Namespace) -> int:
    config = run_config.build(args.config_file, args.preset, args.overrides)
    sys.stdout.write(run_config.to_yaml(config))
    return 0


def cmd_estimate(args: argparse.Namespace) -> int:
    import json

    from core.planning import estimate, preflight

    config = run_config.build(args.config_file, args.preset, args.overrides)
    figures = estimate.estimate(config, _workspace(args))
    findings = preflight.findings(config, figures)
    if args.json:
        print(json.dumps({**figures.to_json(), "findings": [vars(f) for f in findings]}, ensure_ascii=False, indent=2))
        return 0
    rows = preflight.summary_rows(figures)
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    for finding in findings:
        print(f"{finding.level}: {finding.field}: {finding.message}")
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    import json

    from core.data import cleaning, formats, store
    from core.models import modeling

    options = cleaning.CleanOptions(
        steps=tuple(step for step in cleaning.STEPS if step not in args.skip), max_tokens=args.max_tokens,
        near_duplicate_threshold=args.near_threshold, contradictions=args.contradictions, mask_pii=args.mask_pii)
    unknown = sorted(set(args.skip) - set(cleaning.STEPS))
    if unknown:
        raise DataError(f"Unknown step(s) for --skip: {', '.join(unknown)}.", f"Use: {', '.join(cleaning.STEPS)}.")
    mapping = None
    if args.prompt_column or args.response_column:
        mapping = formats.CsvMapping(args.prompt_column or "prompt", args.response_column or "response", args.system_column)
    parsed = store.read_file(args.file, mapping)   # a file that cannot be read fails before any model loads
    counter = None
    if "too_long" in options.steps:
        workspace = _workspace(args)
        if args.model == modeling.DEFAULT_MODEL and not modeling.default_model_ready(workspace):
            print("Converting the built-in default model (once, about 30 s)…", file=sys.stderr, flush=True)
        counter = store.token_counter(workspace, args.model)
    if args.data_action == "clean":
        checked = store.clean_file(args.file, parsed, args.out, options, counter)
    else:
        checked = store.check_file(args.file, parsed, options, counter)
    if args.json:
        print(json.dumps(checked.to_json(), ensure_ascii=False, indent=2))
    else:
        print("\n".join(store.summary_lines(checked)))
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from core import doctor

    workspace = _workspace(args)
    if args.repair:
        for line in doctor.repair(workspace):
            print(line)
    rows = doctor.report(workspace) + doctor.workspace_findings(workspace)
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    from core.data import store
    from core.models import modeling

    workspace = _workspace(args)
    store.ensure_demo_dataset(workspace)
    if not modeling.default_model_ready(workspace):
        print("Converting the built-in default model (once, about 30 s)…", flush=True)
    print(f"Default model ready at {modeling.ensure_default_model(workspace)}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    import warnings

    from transformers.utils import logging as transformers_logging

    from core.jobs import worker

    transformers_logging.disable_progress_bar()  # our progress lines are the output
    warnings.filterwarnings("ignore", category=FutureWarning)
    if args.resume:
        if args.config_file or args.preset:
            raise ConfigError("--resume continues a run with its own config.",
                              "Leave out the config file and --preset; change settings with --set.")
        config, changes = None, dict(run_config.parse_override(item) for item in args.overrides)
    else:
        config, changes = run_config.build(args.config_file, args.preset, args.overrides), None
    folder = worker.run_in_foreground(_workspace(args), config, args.resume, changes, args.processes,
                                      echo=lambda line: print(line, flush=True))
    if worker.is_main_process():
        print(folder.root)
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    from core.accounts.users import Users
    from studio.app import launch

    accounts = Users.load(args.users) if args.users else None
    if accounts is None and not _loopback(args.host):
        if not args.open_without_accounts:
            raise ConfigError(f"Listening on {args.host} without accounts would let anyone who reaches the port read "
                              "your data, train, export and delete.",
                              "Start with --users FILE (create it with 'lora-studio users add NAME --role admin'), "
                              "or listen on 127.0.0.1, or pass --open-without-accounts if you really mean it.")
        print(f"WARNING: listening on {args.host} without accounts: anyone who reaches port {args.port} can do "
              "everything.", file=sys.stderr, flush=True)
    launch(_workspace(args), host=args.host, port=args.port, accounts=accounts, max_upload_mb=args.max_upload_mb,
           allowed_paths=args.allow_path)
    return 0


def _loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command is None:  # plain `lora-studio` starts the UI
        args = build_parser().parse_args(["ui", *(argv if argv is not None else sys.argv[1:])])
    try:
        return args.handler(args)
    except (ConfigError, DataError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except StudioError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILURE
    except OSError as error:   # a full disk gets its words; any other OSError stays a bug to report
        known = classify(error, "The command")
        if not isinstance(known, DiskFullError):
            raise
        print(f"error: {known}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130


