"""`lora-studio models trust|distrust|trusted`: which models may run their own Python code when they load
(transformers' trust_remote_code). Off for every model unless turned on here, by someone with a shell on the
machine: such code runs with the studio's rights."""

from __future__ import annotations

import argparse
import sys

from core.models import modeling
from core.workspace import Workspace


def add_commands(commands: argparse._SubParsersAction, workspace_flag: argparse.ArgumentParser) -> None:
    models = commands.add_parser("models", help="which models may run their own code when they load")
    actions = models.add_subparsers(dest="models_action", required=True, parser_class=type(models))
    for action, handler, text in (("trust", cmd_trust, "let NAME run its own code (trust_remote_code)"),
                                  ("distrust", cmd_distrust, "stop NAME from running its own code")):
        parser = actions.add_parser(action, parents=[workspace_flag], help=text)
        parser.add_argument("name", help="the model as model.name names it (a hub id or a folder)")
        parser.set_defaults(handler=handler)
    actions.add_parser("trusted", parents=[workspace_flag], help="list the models allowed to run their own code"
                       ).set_defaults(handler=cmd_trusted)


def cmd_trust(args: argparse.Namespace) -> int:
    modeling.set_code_trust(Workspace.open(args.workspace), args.name, True)
    print(f"WARNING: '{args.name}' may now run its own Python code when it loads, with this studio's rights. "
          "Do this only for models whose code you have read or whose publisher you trust.", file=sys.stderr)
    return 0


def cmd_distrust(args: argparse.Namespace) -> int:
    modeling.set_code_trust(Workspace.open(args.workspace), args.name, False)
    print(f"'{args.name}' no longer runs its own code.")
    return 0


def cmd_trusted(args: argparse.Namespace) -> int:
    for name in modeling.trusted_code_models(Workspace.open(args.workspace)):
        print(name)
    return 0
