"""`lora-studio users add|passwd|role|remove|list`: the accounts of a shared studio (core.accounts).

Passwords are asked for twice without echo, or read from standard input with --password-stdin (for
scripts: `printf '%s\\n' "$PW" | lora-studio users add ana --role admin --password-stdin`).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from core.accounts.users import ROLES, Users
from core.errors import ConfigError
from core.workspace import Workspace


def add_commands(commands: argparse._SubParsersAction, workspace_flag: argparse.ArgumentParser) -> None:
    users = commands.add_parser("users", help="manage the accounts of a shared studio (see 'ui --users')")
    actions = users.add_subparsers(dest="users_action", required=True, parser_class=type(users))
    where = argparse.ArgumentParser(add_help=False, parents=[workspace_flag])
    where.add_argument("--users", type=Path, help="the users file (default: users.json in the workspace)")
    secret = argparse.ArgumentParser(add_help=False)
    secret.add_argument("--password-stdin", action="store_true", help="read the password from standard input")

    add = actions.add_parser("add", parents=[where, secret], help="add a user")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=ROLES)
    add.set_defaults(handler=cmd_add)
    passwd = actions.add_parser("passwd", parents=[where, secret], help="set a user's password")
    passwd.add_argument("name")
    passwd.set_defaults(handler=cmd_passwd)
    role = actions.add_parser("role", parents=[where], help="change a user's role")
    role.add_argument("name")
    role.add_argument("role", choices=ROLES)
    role.set_defaults(handler=cmd_role)
    remove = actions.add_parser("remove", parents=[where], help="remove a user")
    remove.add_argument("name")
    remove.set_defaults(handler=cmd_remove)
    actions.add_parser("list", parents=[where], help="list users and roles").set_defaults(handler=cmd_list)


def users_file(args: argparse.Namespace) -> Path:
    return args.users or Workspace.open(args.workspace).root / "users.json"


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise ConfigError("The two passwords differ.", "Type the same password twice.")
    return first


def cmd_add(args: argparse.Namespace) -> int:
    path = users_file(args)
    Users.load(path, must_exist=False).add(args.name, args.role, _password(args))
    print(f"Added {args.role} '{args.name}' to {path}")
    return 0


def cmd_passwd(args: argparse.Namespace) -> int:
    Users.load(users_file(args)).set_password(args.name, _password(args))
    print(f"Password of '{args.name}' changed")
    return 0


def cmd_role(args: argparse.Namespace) -> int:
    Users.load(users_file(args)).set_role(args.name, args.role)
    print(f"'{args.name}' is now {args.role}")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    Users.load(users_file(args)).remove(args.name)
    print(f"Removed '{args.name}'")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    users = Users.load(users_file(args))
    for name in sorted(users.entries):
        print(f"{name}\t{users.role_of(name)}")
    return 0
