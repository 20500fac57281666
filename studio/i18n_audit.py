"""Which English texts of the studio lack a translation, and which translations are not in their language.

    python -m studio.i18n_audit                      # a summary per file; exit 1 when something is missing
    python -m studio.i18n_audit --missing studio/tabs/data.py   # the missing texts as JSON, ready to translate

The texts are found where they are written: the static texts of the built app (studio.i18n.StaticTexts),
every `tr("…")` in studio/ and `N_("…")` in core/, every message and fix of a StudioError raised in core/ or studio/ (an f-string
becomes a template whose placeholders are its expressions: f"Line {number}: {why}" -> "Line {number}: {why}"),
the error banners' titles, and the texts core/ keeps in data (the glossary, the guide). tests/test_i18n.py runs
the same checks.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from core import errors, glossary
from studio.i18n import LANGUAGES, catalog, is_translated

REPO = Path(__file__).resolve().parent.parent
SOURCES = ("core", "studio")   # the command line speaks English
# Words that stay as they are in Chinese text: names of methods, metrics, formats and hardware.
KEEP_IN_CHINESE = {
    "lora", "qlora", "bleu", "rouge", "rougel", "rouge-l", "chrf", "gguf", "json", "jsonl", "csv", "cpu", "gpu",
    "cuda", "eta", "api", "oom", "nan", "bf16", "fp16", "fp32", "nf4", "int8", "id", "url", "http", "https",
    "openai", "safetensors", "zip", "yaml", "pii", "sdpa", "adamw", "hugging", "face", "hub", "studio", "smollm2",
    "deepseek", "qwen", "llama", "mps", "ddp", "fsdp", "deepspeed", "tokens", "token", "a", "b", "ab", "kappa",
    "krippendorff", "cohen", "alpha", "ci", "llm", "gradio", "docker", "accelerate", "peft", "torch", "ram",
    "vram", "v", "gb", "chatml", "alpaca", "sharegpt", "ollama", "vllm", "tgi", "bitsandbytes", "torchao",
    "logits", "modelfile", "pypi", "dora", "top-p", "llama2", "llama3", "mistral", "zephyr", "gemma", "phi",
    "mb", "bit", "n", "kb", "gib", "mib", "s", "ms", "min", "h", "vs", "ok", "uuid", "sqlite", "utf",
}
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_\-]*")
_IGNORED_SPANS = re.compile(r"\{[^{}]*\}|`[^`]*`|\]\([^)]*\)|https?://\S+|<[^>]+>|--[\w-]+|\b[\w.-]+\.(?:py|json|jsonl|"
                            r"csv|yaml|log|db|zip|gguf|safetensors)\b|\b\w+(?:\.\w+)+\b|\b\w+_\w+\b")


def static_texts() -> Iterator[tuple[str, str]]:
    """(text, file) for every static text of a freshly built app; the file is the first that has the text's
    first line in it (else "the built app")."""
    from core.workspace import Workspace
    from studio.app import build_app
    from studio.context import StudioContext
    from studio.i18n import StaticTexts

    with tempfile.TemporaryDirectory() as folder:
        app = build_app(StudioContext.create(Workspace.open(Path(folder) / "ws")))
        sources = {path.relative_to(REPO): path.read_text(encoding="utf-8")
                   for folder in SOURCES for path in sorted((REPO / folder).rglob("*.py"))}
        for text in StaticTexts(app).english():
            start = text.strip().splitlines()[0][:40]
            yield text, next((f"{path}" for path, source in sources.items() if start in source),
                             "the built app (static texts)")


def _template(node: ast.expr) -> list[str]:
    """The English text(s) an expression stands for: a literal, an f-string as a template, both arms of an
    `a if c else b`; [] for anything else (a variable: its text is catalogued where it is written)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(str(value.value).replace("{", "{{").replace("}", "}}"))
            elif isinstance(value, ast.FormattedValue):
                parts.append("{" + ast.unparse(value.value) + "}")
        return ["".join(parts)]
    if isinstance(node, ast.IfExp):
        return _template(node.body) + _template(node.orelse)
    return []


def _error_classes() -> list[type[errors.StudioError]]:
    """StudioError and every subclass (those of core's modules and the studio's)."""
    import core.progress  # noqa: F401 - Cancelled
    import studio.access  # noqa: F401 - NotAllowed

    found, todo = [], [errors.StudioError]
    while todo:
        kind = todo.pop()
        found.append(kind)
        todo.extend(kind.__subclasses__())
    return found


def code_texts() -> Iterator[tuple[str, str]]:
    """(text, file:line) for every `tr("…")` and every StudioError message and fix in the source."""
    error_names = {kind.__name__ for kind in _error_classes()}
    for folder in SOURCES:
        for path in sorted((REPO / folder).rglob("*.py")):
            where = path.relative_to(REPO)
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Call):
                    continue
                name = node.func.id if isinstance(node.func, ast.Name) else \
                    node.func.attr if isinstance(node.func, ast.Attribute) else ""
                if name in ("tr", "N_") and node.args:
                    texts = [text.replace("{{", "{").replace("}}", "}") for text in _template(node.args[0])]
                elif name in error_names:
                    texts = [text for argument in [*node.args[:2], *(k.value for k in node.keywords
                                                                     if k.arg in ("problem", "fix"))]
                             for text in _template(argument)]
                else:
                    continue
                yield from ((text, f"{where}:{node.lineno}") for text in texts if text.strip())


def data_texts() -> Iterator[tuple[str, str]]:
    """Texts core/ keeps in data, shown by the studio."""
    from studio.errors import error_title

    for kind in _error_classes():
        yield error_title(kind), "studio/errors.py (banner titles)"
    for term, meaning in glossary.TERMS.items():
        yield term, "core/glossary.py"
        yield meaning, "core/glossary.py"


def all_texts() -> dict[str, str]:
    """English text -> where it is first written."""
    found: dict[str, str] = {}
    for text, where in (*code_texts(), *data_texts(), *static_texts()):
        found.setdefault(text, where)
    return found


def english_words(text: str) -> list[str]:
    """The English words left in a translated text (placeholders, code, paths and known terms aside)."""
    bare = _IGNORED_SPANS.sub(" ", text)
    return [word for word in _WORD.findall(bare) if word.lower().strip("-_") not in KEEP_IN_CHINESE
            and not any(character.isdigit() for character in word)]


def problems(lang: str, texts: dict[str, str]) -> dict[str, list[str]]:
    """'missing' (neither catalogued nor matched by a catalogued template), 'placeholders' (a translation
    whose {placeholders} differ) and 'english' (a translation with English words left in it), each a list
    of English texts."""
    translations = catalog(lang)
    placeholders = re.compile(r"\{[^{}]*\}")
    return {
        "missing": sorted(text for text in texts if not is_translated(text, lang)),
        "placeholders": sorted(text for text, translated in translations.items()
                               if sorted(placeholders.findall(text)) != sorted(placeholders.findall(translated))),
        "english": sorted(text for text, translated in translations.items()
                          if lang.startswith("zh") and english_words(translated)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--missing", metavar="PREFIX", help="print the missing texts of files starting with PREFIX "
                        "as JSON (English -> empty), ready to translate")
    parser.add_argument("--lang", default="zh-CN", choices=[code for code in LANGUAGES if code != "en"])
    args = parser.parse_args(argv)
    texts = all_texts()
    found = problems(args.lang, texts)
    if args.missing is not None:
        print(json.dumps({text: "" for text in found["missing"] if texts[text].startswith(args.missing)},
                         ensure_ascii=False, indent=1))
        return 0
    by_file: dict[str, int] = {}
    for text in found["missing"]:
        file = texts[text].split(":")[0]
        by_file[file] = by_file.get(file, 0) + 1
    for file, count in sorted(by_file.items()):
        print(f"{count:5d} missing  {file}")
    for text in found["placeholders"]:
        print(f"placeholders differ: {text!r}")
    for text in found["english"]:
        print(f"English left in the translation of {text!r}: {english_words(catalog(args.lang)[text])}")
    print(f"{len(texts)} texts, {len(found['missing'])} missing in {args.lang}")
    return 1 if any(found.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
