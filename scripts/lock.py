"""Write constraints.txt: the exact versions a fresh install gets, taken from the venv the suite passed in.

Run by `make lock` with ./.venv's Python. It pins every package that lora-studio[test] needs on this
interpreter, as installed in the venv, then asks pip on each other supported Python (python3.12, ...; a
dry run, nothing is installed) what it would need on top with those pins, and pins that with an
environment marker. A pinned version that does not exist for another supported Python makes pip fail
here, not on a user's machine.

torch's GPU runtime (nvidia-*, cuda-*, triton) is left out: the suite runs on torch's CPU build, and the
CUDA build pins most of those libraries itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
GPU_RUNTIME = ("nvidia-", "cuda-", "triton")
HEADER = """\
# Exact versions of everything `lora-studio[test]` needs, as installed when the test suite last passed.
# scripts/setup.sh installs with `-c constraints.txt`. Regenerate with `make lock` (never edit by hand).
"""


def project_requirements() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project["dependencies"] + project["optional-dependencies"]["test"]


def installed_closure(roots: list[str]) -> dict[str, str]:
    """Name → installed version of the roots and everything they need on this interpreter."""
    pins: dict[str, str] = {}
    seen: set[tuple[str, str]] = set()  # (package, extra) pairs already walked
    todo = [(Requirement(text), "") for text in roots]
    while todo:
        requirement, extra = todo.pop()
        if requirement.marker and not requirement.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(requirement.name)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            sys.exit(f"error: {requirement} is required but not installed in {sys.prefix}; run `make test` first.")
        # A local version label (torch's "+cpu") names the build, not the release that the pin matches.
        pins[name] = dist.version.split("+")[0]
        for wanted in ["", *requirement.extras]:
            if (name, wanted) not in seen:
                seen.add((name, wanted))
                todo += [(Requirement(text), wanted) for text in dist.requires or []]
    return pins


def supported_pythons() -> list[str]:
    """The minor versions that pyproject.toml's requires-python admits, e.g. ["3.11", "3.12", "3.13"]."""
    allowed = SpecifierSet(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"])
    return [f"3.{minor}" for minor in range(8, 30) if f"3.{minor}" in allowed]


def resolve_with(python: str, roots: list[str], pins: dict[str, str]) -> dict[str, str]:
    """What pip on `pythonX.Y` would install given the pins: a dry run that reads PyPI's metadata only.

    The real interpreter is needed because pip's --python-version does not apply to environment markers."""
    command = f"python{python}"
    if subprocess.run([command, "-c", "import sys"], capture_output=True).returncode != 0:
        sys.exit(f"error: {command} is needed to check the pins for Python {python}, and it does not run here.\n"
                 "Install it, or with pyenv make every supported version runnable at once, e.g.\n"
                 "  PYENV_VERSION=3.11.7:3.12.1:3.13.0 make lock")
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as constraints:
        constraints.write("".join(f"{name}=={version}\n" for name, version in pins.items()))
        constraints.flush()
        done = subprocess.run(
            [command, "-m", "pip", "install", "--dry-run", "--quiet", "--ignore-installed", "--disable-pip-version-check",
             "--report", "-", "-c", constraints.name, *roots],
            capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"error: the pinned versions do not install on Python {python}:\n{done.stderr.strip()}\n"
                 "Give the package a version that exists for every supported Python, or a marker line.")
    report = json.loads(done.stdout)
    return {canonicalize_name(item["metadata"]["name"]): item["metadata"]["version"] for item in report["install"]}


def main() -> None:
    roots = project_requirements()
    pins = installed_closure(roots)
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    # Packages that only another Python needs (e.g. audioop-lts on 3.13), with the Pythons that need them.
    extra: dict[tuple[str, str], list[str]] = {}
    for python in supported_pythons():
        if python == here:
            continue
        for name, version in resolve_with(python, roots, pins).items():
            if name not in pins and not name.startswith(GPU_RUNTIME):
                extra.setdefault((name, version), []).append(python)
    lines = [f"{name}=={version}" for name, version in sorted(pins.items())]
    for (name, version), pythons in sorted(extra.items()):
        marker = " or ".join(f'python_version == "{python}"' for python in pythons)
        lines.append(f"{name}=={version}; {marker}")
    (ROOT / "constraints.txt").write_text(HEADER + f"# Made on Python {here}.\n" + "\n".join(lines) + "\n")
    print(f"constraints.txt: {len(lines)} pins ({len(extra)} for other Pythons only)")


if __name__ == "__main__":
    main()
