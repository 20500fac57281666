"""What the inference benchmarks share: a throw-away workspace with the built-in model and runs whose
adapters are random (speed does not depend on what an adapter learned, so no training is needed)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from core import config  # noqa: E402
from core.data import store  # noqa: E402
from core.models import modeling  # noqa: E402
from core.runs import records  # noqa: E402
from core.workspace import Workspace  # noqa: E402

SHARED_MODEL_WORKSPACE = REPO / ".cache" / "default-model-workspace"
PROMPTS = ["Write a short story about a lighthouse keeper.", "Explain how vaccines work to a child.",
           "Describe a walk through a busy market.", "Give advice to someone starting their first job.",
           "Tell me about the history of tea.", "Describe the life cycle of a butterfly.",
           "Write a letter to a friend about your holiday.", "Explain why the sky is blue."]


def workspace_with_runs(root: Path, names: list[str], seed: int = 0) -> Workspace:
    """A workspace at `root` whose default model links to the converted copy in .cache/, with one run per
    name: the studio's default LoRA (r=16 on q_proj and v_proj) on the default model, random small weights."""
    from peft import LoraConfig, get_peft_model

    shared = Workspace.open(SHARED_MODEL_WORKSPACE)
    converted = modeling.ensure_default_model(shared)
    workspace = Workspace.open(root)
    workspace.model_dir(modeling.DEFAULT_MODEL_DIR).symlink_to(converted, target_is_directory=True)
    store.ensure_demo_dataset(workspace)   # the runs' training data (exports check themselves on it)
    base = modeling.load_model(modeling.DEFAULT_MODEL, workspace)
    torch.manual_seed(seed)
    for name in names:
        run = config.build(None, None, [f"name={name}", "generation.temperature=0"])
        folder = records.create(workspace, run)
        lora = run.lora
        model = get_peft_model(base, LoraConfig(r=lora.r, lora_alpha=lora.alpha, target_modules=lora.target_modules,
                                                task_type="CAUSAL_LM"))
        with torch.no_grad():
            for parameter_name, parameter in model.named_parameters():
                if "lora_B" in parameter_name:
                    parameter.normal_(0, 0.01)
        model.save_pretrained(folder.adapter)
        base = model.unload()
    return workspace
