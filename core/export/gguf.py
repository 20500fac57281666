"""GGUF for llama.cpp and Ollama, offline: llama.cpp's own converter (convert_hf_to_gguf.py, from the
llama-cpp-python source package; see core.export.formats.converter_dir) turns the verified merged model
into one .gguf file, which is then loaded back with transformers (`gguf_file=`) and must choose the same
next token as the merged model at MIN_AGREEMENT of the positions of the run's validation conversations.
An Ollama Modelfile with the chat template and the run's reply settings is written beside it.
"""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path
from typing import Any

from core.errors import StudioError
from core.export import checks, formats
from core.export.source import RunSource
from core.export.steps import Steps
from core.progress import Cancelled
from core.text import N_
from core.workspace import ExportFolder, Workspace

STEPS = 2
MIN_AGREEMENT = 0.95
VERIFY_SAMPLES, VERIFY_TOKENS = 8, 128
# Ollama's Go-template form of ChatML (the built-in model's layout and the studio's default one).
CHATML_TEMPLATE = ("{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n"
                   "{{ end }}<|im_start|>assistant\n")


def write(workspace: Workspace, source: RunSource, merged: Path, export: ExportFolder, outtype: str,
          steps: Steps) -> dict[str, Any]:
    """Convert `merged` into export.gguf(outtype) ("f16" or "q8_0"), check it and write the Modelfile."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = export.gguf(outtype)
    steps(N_(f"Converting the merged model to GGUF ({outtype}) with llama.cpp's converter"))
    _convert(merged, target, outtype, export.root / "convert.log", steps)

    steps(N_("Loading the GGUF file back and comparing its next-token choices with the merged model's"))
    tokenizer = AutoTokenizer.from_pretrained(merged)
    data = checks.samples(workspace, source, tokenizer, VERIFY_SAMPLES, VERIFY_TOKENS)
    expected = checks.logits(AutoModelForCausalLM.from_pretrained(merged).eval(), data.token_ids)
    gc.collect()
    reloaded = AutoModelForCausalLM.from_pretrained(target.parent, gguf_file=target.name).eval()
    agreement = checks.compare(expected, checks.logits(reloaded, data.token_ids))
    del reloaded
    gc.collect()
    if agreement.top_token_agreement < MIN_AGREEMENT:
        raise StudioError(f"The GGUF file chooses the merged model's next token at only "
                          f"{agreement.top_token_agreement:.1%} of {agreement.positions} positions.",
                          f"Nothing was exported. Try {'f16' if outtype != 'f16' else 'the merged export'} instead.")
    export.modelfile.write_text(modelfile(target.name, tokenizer, source), encoding="utf-8")
    return {**agreement.to_json(), "compared_on": data.origin, "threshold": f"same top token at ≥ {MIN_AGREEMENT:.0%}",
            "size_bytes": target.stat().st_size}


def _convert(merged: Path, target: Path, outtype: str, log: Path, steps: Steps) -> None:
    script = formats.converter_dir() / "convert_hf_to_gguf.py"
    with log.open("wb") as printed:
        converter = subprocess.Popen([sys.executable, str(script), str(merged), "--outfile", str(target),
                                      "--outtype", outtype], stdout=printed, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        try:
            while converter.poll() is None:
                steps.check()
                try:
                    converter.wait(timeout=0.5)
                except subprocess.TimeoutExpired:
                    pass
        except Cancelled:
            converter.kill()
            converter.wait()
            raise
    if converter.returncode != 0:
        raise StudioError(f"llama.cpp's converter could not convert this model: {_last_error(log)}",
                          "GGUF covers the architectures and tokenizers llama.cpp knows; the merged export works "
                          "with transformers, vLLM and TGI. convert.log in the export's folder has the details.")


def _last_error(log: Path) -> str:
    lines = [line.strip() for line in log.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line or "error:" in line]
    return (errors or lines or ["it printed nothing"])[-1][:300]


def modelfile(gguf_name: str, tokenizer: Any, source: RunSource) -> str:
    """Ollama's recipe: `ollama create NAME -f Modelfile` in this folder, then `ollama run NAME`."""
    generation = source.config.generation
    lines = [f"# Made by LoRA Studio from run '{source.run_id}'. Use: ollama create {source.run_id} -f Modelfile",
             f"FROM ./{gguf_name}"]
    if "<|im_start|>" in (getattr(tokenizer, "chat_template", None) or ""):
        lines += [f'TEMPLATE """{CHATML_TEMPLATE}"""', 'PARAMETER stop "<|im_end|>"']
    else:
        lines.append("# The chat template stored in the GGUF file is used (Ollama reads it from there).")
    lines += [f"PARAMETER temperature {generation.temperature}", f"PARAMETER top_p {generation.top_p}",
              f"PARAMETER repeat_penalty {generation.repetition_penalty}",
              f"PARAMETER num_predict {generation.max_new_tokens}"]
    if source.config.data.system_prompt:
        lines.append(f'SYSTEM """{source.config.data.system_prompt}"""')
    return "\n".join(lines) + "\n"
