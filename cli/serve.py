"""`lora-studio serve`: the OpenAI-compatible API on this machine (core.serve)."""

from __future__ import annotations

import argparse


def add_commands(commands: argparse._SubParsersAction, workspace_flag: argparse.ArgumentParser) -> None:
    serve = commands.add_parser(
        "serve", parents=[workspace_flag],
        help="serve runs' adapters on one base (or a merged export) as an OpenAI-compatible API on 127.0.0.1",
        description="Clients pick a model per request by the `model` field, using the names given here; "
                    "concurrent requests are batched together, whatever adapter each names.")
    serve.add_argument("models", nargs="+", metavar="MODEL_OR_RUN",
                       help="a run id, an export id, a base model (default, a folder), or base:/run:/export: keys")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--max-batch", type=int, default=8, help="most requests answered together (default 8)")
    serve.set_defaults(handler=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    from core.serve import server
    from core.workspace import Workspace

    server.run(Workspace.open(args.workspace), args.models, args.host, args.port, args.max_batch,
               echo=lambda line: print(line, flush=True))
    return 0
