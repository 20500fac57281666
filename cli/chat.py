"""`lora-studio chat`: a conversation with a base model, a run or an export in the terminal, streamed."""

from __future__ import annotations

import argparse
import sys

COMMANDS = "/reset starts over, /exit (or Ctrl-D) ends, Ctrl-C stops a reply"


def add_commands(commands: argparse._SubParsersAction, workspace_flag: argparse.ArgumentParser) -> None:
    chat = commands.add_parser("chat", parents=[workspace_flag],
                               help="chat with a base model, a run or an export in the terminal (one line per message)")
    chat.add_argument("model", metavar="MODEL_OR_RUN",
                      help="a run id, an export id, a base model (default, a folder), or base:/run:/export: keys")
    chat.add_argument("--system", default=None, help="system prompt (default: the one the run was trained with)")
    chat.add_argument("--temperature", type=float, help="randomness, 0 = always the likeliest word (default: the run's)")
    chat.add_argument("--top-p", type=float, help="nucleus sampling share (default: the run's)")
    chat.add_argument("--max-new-tokens", type=int, help="longest reply in tokens (default: the run's)")
    chat.add_argument("--repetition-penalty", type=float, help="discourages repeating (default: the run's)")
    chat.set_defaults(handler=cmd_chat)


def cmd_chat(args: argparse.Namespace) -> int:
    from core import config
    from core.inference import choices
    from core.inference.chat import ChatEngine, Turn
    from core.system.device_lock import DeviceLock
    from core.workspace import Workspace

    workspace = Workspace.open(args.workspace)
    choice = choices.find(workspace, args.model)
    given = {"temperature": args.temperature, "top_p": args.top_p, "max_new_tokens": args.max_new_tokens,
             "repetition_penalty": args.repetition_penalty}
    chosen = {**choice.generation.model_dump(), **{name: value for name, value in given.items() if value is not None}}
    settings = config.validate({"generation": chosen}).generation   # out-of-range values get the config's message
    engine = ChatEngine(workspace, DeviceLock(workspace))
    system = [{"role": "system", "content": args.system}] if args.system else []
    messages = list(system)
    interactive = sys.stdin.isatty()
    print(f"Chatting with {choice.label}. {COMMANDS}.", file=sys.stderr, flush=True)
    while True:
        try:
            line = input("you> " if interactive else "").strip()
        except EOFError:
            return 0
        except KeyboardInterrupt:
            print(file=sys.stderr)
            return 0
        if line in ("/exit", "/quit"):
            return 0
        if line == "/reset":
            messages = list(system)
            print("(new conversation)", file=sys.stderr, flush=True)
            continue
        if not line:
            continue
        messages.append({"role": "user", "content": line})
        reply = None
        replies = engine.stream([Turn(choice.key, messages)], settings)
        try:
            for [reply] in replies:
                print(reply.delta, end="", flush=True)
        except KeyboardInterrupt:
            replies.close()   # stops generating and frees the device
        print(flush=True)
        if reply is None or not reply.text:
            messages.pop()
            continue
        messages.append({"role": "assistant", "content": reply.text})
        speed = f", {reply.tokens_per_s:.1f} tokens/s" if reply.tokens_per_s else ""
        print(f"({reply.tokens} tokens, first after {reply.first_token_s:.2f} s{speed})", file=sys.stderr, flush=True)

