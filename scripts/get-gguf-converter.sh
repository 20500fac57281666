#!/usr/bin/env bash
# Puts llama.cpp's GGUF converter (convert_hf_to_gguf.py with its conversion/ and gguf-py/ folders, about
# 2 MB of Python) into .venv/llama.cpp, where the GGUF export looks for it (<python prefix>/llama.cpp). It
# comes from the source package of llama-cpp-python on PyPI; nothing is compiled. Idempotent.
#   LLAMA_CPP_PYTHON_VERSION  another release     PIP, TARGET  another pip and folder (the Docker image's)
set -euo pipefail
cd "$(dirname "$0")/.."

version=${LLAMA_CPP_PYTHON_VERSION:-0.3.36}
pip=${PIP:-.venv/bin/pip}
target=${TARGET:-.venv/llama.cpp}
stamp="$target/.from-llama-cpp-python-$version"
[ -f "$stamp" ] && exit 0

download=$(mktemp -d)
trap 'rm -rf "$download"' EXIT
"$pip" download --quiet --disable-pip-version-check --no-deps --no-binary :all: \
    "llama-cpp-python==$version" -d "$download"
tar -xzf "$download"/llama_cpp_python-*.tar.gz -C "$download" \
    --wildcards '*/vendor/llama.cpp/convert_hf_to_gguf.py' '*/vendor/llama.cpp/conversion/*' \
    '*/vendor/llama.cpp/gguf-py/*' '*/vendor/llama.cpp/LICENSE'
rm -rf "$target"
mv "$download"/llama_cpp_python-*/vendor/llama.cpp "$target"
touch "$stamp"
