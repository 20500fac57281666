"""Accounts for a shared studio: who may log in, with which role. Passwords are kept only as argon2 hashes
and never logged.

    users = Users.load(path)                       # a JSON file, written atomically with mode 0600
    users.add("ana", "admin", password)            # roles: admin, annotator, viewer
    users.check("ana", password)                   # the role, or None (same work for unknown names)
    may(role, "train")                             # what each role may do

Roles:
    admin      everything
    annotator  the Rate tab, and only their own ratings
    viewer     a read-only demo: Chat and run results; no training, uploads, exports or deletion
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from core.errors import ConfigError
from core.text import N_
from core.workspace import atomic_write_json, read_json

Role = Literal["admin", "annotator", "viewer"]
ROLES: tuple[Role, ...] = ("admin", "annotator", "viewer")
ROLE_NAMES = (N_("admin"), N_("annotator"), N_("viewer"))   # a role in words: the studio shows tr(role)
MIN_PASSWORD = 8
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")

# What each role may do. Handlers name the permission they need; the studio refuses the rest.
PERMISSIONS: dict[Role, frozenset[str]] = {
    "admin": frozenset({"data", "configure", "train", "evaluate", "rate", "manage-ratings", "chat", "export",
                        "view-runs", "download"}),   # naming a hub model to download is configuring: admins
    "annotator": frozenset({"rate"}),
    "viewer": frozenset({"chat", "view-runs"}),
}

_hasher = PasswordHasher()
# Checking an unknown name costs a real verification too, so response times do not reveal who exists.
_UNKNOWN = _hasher.hash("an unknown user's password is never this")


def may(role: Role | None, permission: str) -> bool:
    """Whether `role` may do `permission`; None (a studio without accounts, on this machine only) may do all."""
    return role is None or permission in PERMISSIONS[role]


@dataclass
class Users:
    path: Path
    entries: dict[str, dict[str, str]] = field(default_factory=dict)   # name -> {"role", "hash"}

    @classmethod
    def load(cls, path: Path, must_exist: bool = True) -> Users:
        raw = read_json(Path(path))
        if raw is None:
            if must_exist:
                raise ConfigError(f"The users file {path} does not exist.",
                                  f"Create the first admin with: lora-studio users add NAME --role admin --users {path}")
            return cls(Path(path))
        if not isinstance(raw, dict) or not isinstance(raw.get("users"), dict):
            raise ConfigError(f"The users file {path} is not a LoRA Studio users file.",
                              "Point --users at the file 'lora-studio users add' wrote.")
        return cls(Path(path), raw["users"])

    def role_of(self, name: str) -> Role | None:
        entry = self.entries.get(name)
        return entry["role"] if entry else None  # type: ignore[return-value]

    def check(self, name: str, password: str) -> Role | None:
        """The user's role if the password is right, else None."""
        entry = self.entries.get(name)
        try:
            _hasher.verify(entry["hash"] if entry else _UNKNOWN, password)
        except (VerificationError, InvalidHashError):
            return None
        return self.role_of(name) if entry else None

    def add(self, name: str, role: str, password: str) -> None:
        if not _NAME.match(name):
            raise ConfigError(f"'{name}' cannot be a user name.",
                              "Use 1-64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit.")
        if name in self.entries:
            raise ConfigError(f"User '{name}' exists already.", "Use 'lora-studio users passwd' to change the password.")
        self.entries[name] = {"role": _checked_role(role), "hash": _hash(password)}
        self._save()

    def set_password(self, name: str, password: str) -> None:
        self._existing(name)["hash"] = _hash(password)
        self._save()

    def set_role(self, name: str, role: str) -> None:
        self._existing(name)["role"] = _checked_role(role)
        self._save()

    def remove(self, name: str) -> None:
        self._existing(name)
        admins = [user for user, entry in self.entries.items() if entry["role"] == "admin"]
        if admins == [name]:
            raise ConfigError(f"'{name}' is the only admin.", "Add another admin first.")
        del self.entries[name]
        self._save()

    def _existing(self, name: str) -> dict[str, str]:
        if name not in self.entries:
            raise ConfigError(f"There is no user '{name}'.", f"Known users: {', '.join(sorted(self.entries)) or 'none'}.")
        return self.entries[name]

    def _save(self) -> None:
        atomic_write_json(self.path, {"users": self.entries})
        os.chmod(self.path, 0o600)   # hashes are not passwords, but nobody else needs to read them


def _checked_role(role: str) -> Role:
    if role not in ROLES:
        raise ConfigError(f"'{role}' is not a role.", f"Choose one of: {', '.join(ROLES)}.")
    return role  # type: ignore[return-value]


def _hash(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ConfigError(f"The password is too short ({len(password)} characters).",
                          f"Use at least {MIN_PASSWORD} characters.")
    return _hasher.hash(password)
