"""`lora-studio ratings …`: human rating sessions from the command line, the same core calls as the Rate tab.

    lora-studio ratings create NAME --model base:default --model run:faq [--prompts redteam] [--mode pairwise]
    lora-studio ratings list | report SESSION [--json] | export SESSION --out FILE | import SESSION FILE
    lora-studio ratings pairs SESSION --out FILE | hard-examples SESSION [--items 3,7] | generate SESSION
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from core.errors import DataError
from core.workspace import Workspace


def add_commands(commands: argparse._SubParsersAction, workspace_flag: argparse.ArgumentParser) -> None:
    ratings = commands.add_parser("ratings", help="human rating sessions: create, report, export, import")
    actions = ratings.add_subparsers(dest="ratings_action", required=True, parser_class=type(ratings))

    create = actions.add_parser("create", parents=[workspace_flag],
                                help="create a session and generate its responses here (holding the device)")
    create.set_defaults(handler=cmd_create)
    create.add_argument("name", help="the session's name, e.g. 'FAQ: base vs tuned'")
    create.add_argument("--model", dest="models", action="append", required=True, metavar="KEY",
                        help="a model to rate (repeatable): base:NAME, run:RUN_ID or export:EXPORT_ID")
    create.add_argument("--prompts", default="redteam", metavar="SOURCE",
                        help="redteam (default), dataset:ID[/vN], file:PATH or session:ID (reuses its responses)")
    create.add_argument("--mode", choices=["scale", "pairwise"], default="scale",
                        help="scale: each response scored on its own; pairwise: two models' responses side by side")
    create.add_argument("--overlap", type=int, default=1, help="raters per item (2 or more to measure agreement)")
    create.add_argument("--max-prompts", type=int, help="draw at most this many prompts at random")
    create.add_argument("--max-new-tokens", type=int, help="a shorter reply limit than the models' own")
    create.add_argument("--seed", type=int, default=0, help="draws prompts, sides and orders (default 0)")
    create.add_argument("--criteria", help="built-in criteria, comma-separated: fluency,relevance,safety (scale) or "
                                           "preference (pairwise)")
    create.add_argument("--criteria-file", type=Path, help="a YAML list of criteria of your own")

    generate = actions.add_parser("generate", parents=[workspace_flag],
                                  help="generate a session's missing responses (after a cancelled or failed run)")
    generate.set_defaults(handler=cmd_generate)
    generate.add_argument("session")

    listing = actions.add_parser("list", parents=[workspace_flag], help="list the sessions")
    listing.set_defaults(handler=cmd_list)
    listing.add_argument("--json", action="store_true")

    report = actions.add_parser("report", parents=[workspace_flag],
                                help="results: means with 95%% intervals, win rates, pass rates, agreement (alpha)")
    report.set_defaults(handler=cmd_report)
    report.add_argument("session")
    report.add_argument("--json", action="store_true", help="print the results as one JSON object")

    export = actions.add_parser("export", parents=[workspace_flag], help="write every rating to a .csv or .jsonl file")
    export.set_defaults(handler=cmd_export)
    export.add_argument("session")
    export.add_argument("--out", type=Path, required=True, help="the file to write (.csv or .jsonl)")

    imported = actions.add_parser("import", parents=[workspace_flag],
                                  help="add ratings made elsewhere (.csv or .jsonl with item, rater, criterion, value)")
    imported.set_defaults(handler=cmd_import)
    imported.add_argument("session")
    imported.add_argument("file", type=Path)

    pairs = actions.add_parser("pairs", parents=[workspace_flag],
                               help="write a pairwise session's verdicts as preference pairs (prompt, chosen, rejected)")
    pairs.set_defaults(handler=cmd_pairs)
    pairs.add_argument("session")
    pairs.add_argument("--out", type=Path, required=True, help="the .jsonl file to write")

    hard = actions.add_parser("hard-examples", parents=[workspace_flag],
                              help="send low-rated items with corrected answers to the hard-examples dataset")
    hard.set_defaults(handler=cmd_hard_examples)
    hard.add_argument("session")
    hard.add_argument("--items", help="item numbers, comma-separated (default: every candidate)")


def _workspace(args: argparse.Namespace) -> Workspace:
    return Workspace.open(args.workspace)


def cmd_create(args: argparse.Namespace) -> int:
    from core.rating import criteria, sessions

    chosen = None
    if args.criteria and args.criteria_file:
        raise DataError("Give --criteria or --criteria-file, not both.", "Choose one.")
    if args.criteria:
        chosen = criteria.by_names([name.strip() for name in args.criteria.split(",") if name.strip()])
    elif args.criteria_file:
        chosen = criteria.parse(args.criteria_file.read_text(encoding="utf-8"))
    workspace = _workspace(args)
    session = sessions.create(workspace, sessions.SessionSpec(
        args.name, args.models, args.prompts, args.mode, chosen, args.overlap, args.max_prompts, args.seed,
        args.max_new_tokens))
    print(f"Session {session.id}: {session.prompts} prompts from {session.source}", flush=True)
    if not session.ready:
        _generate(workspace, session.id)
    print(session.id)
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    _generate(_workspace(args), args.session)
    return 0


def _generate(workspace: Workspace, session_id: str) -> None:
    """Generate in the foreground, holding the device lock; Ctrl-C cancels (finished models are kept)."""
    from core.jobs.worker import stop_on_signals
    from core.progress import Progress
    from core.rating import generation, sessions
    from core.system.device_lock import DeviceLock

    session = sessions.get(workspace, session_id)
    with DeviceLock(workspace).hold(generation.title(session)), stop_on_signals(print) as stop:
        progress = Progress(report=lambda done, total, message: print(f"[{done}/{total}] {message}", flush=True),
                            stop_requested=stop.is_set, log=lambda line: print(line, flush=True))
        print(generation.generate(workspace, session_id, progress), flush=True)


def cmd_list(args: argparse.Namespace) -> int:
    from core.rating import sessions

    found = sessions.list_sessions(_workspace(args))
    if args.json:
        print(json.dumps([{"id": s.id, "name": s.name, "mode": s.mode, "models": s.models, "prompts": s.prompts,
                           "items": s.items, "overlap": s.overlap, "state": s.state, "created": s.created} for s in found],
                         ensure_ascii=False, indent=2))
    for session in found if not args.json else []:
        print(f"{session.id}  {session.label()}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from core.rating import results

    found = results.session_results(_workspace(args), args.session)
    print(json.dumps(found.to_json(), ensure_ascii=False, indent=2) if args.json else "\n".join(found.lines()))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from core.rating import exchange

    count = exchange.export(_workspace(args), args.session, args.out)
    print(f"{count} ratings written to {args.out}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from core.rating import exchange

    result = exchange.import_file(_workspace(args), args.session, args.file)
    skipped = f" ({result.skipped_empty} empty comment/corrected-answer cells skipped)" if result.skipped_empty else ""
    print(f"{result.written} ratings added or updated{skipped}")
    return 0


def cmd_pairs(args: argparse.Namespace) -> int:
    from core.rating import feedback

    count = feedback.write_preference_pairs(_workspace(args), args.session, args.out)
    print(f"{count} preference pairs written to {args.out}")
    return 0


def cmd_hard_examples(args: argparse.Namespace) -> int:
    from core.rating import feedback

    items = None
    if args.items:
        try:
            items = [int(part) for part in args.items.split(",") if part.strip()]
        except ValueError:
            raise DataError(f"--items {args.items} is not a list of item numbers.", "Write them like 3,7,12.") from None
    version = feedback.send_hard_examples(_workspace(args), args.session, items)
    print(f"Hard examples v{version.version}: {version.rows} rows ({version.note})")
    return 0
