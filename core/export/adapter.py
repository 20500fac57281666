"""The adapter-only export: the run's peft adapter folder with the model card, and a zip of it to download
(a few MB, where a merged model is GBs). Checked by loading its config with peft and testing the zip."""

from __future__ import annotations

import shutil
import zipfile
from typing import Any

from core.errors import StudioError
from core.export.source import RunSource
from core.export.steps import Steps
from core.text import N_
from core.workspace import ExportFolder

STEPS = 2


def copy(source: RunSource, export: ExportFolder, steps: Steps) -> dict[str, Any]:
    """Copy the adapter and read it back with peft; returns what it holds."""
    from peft import PeftConfig

    steps(N_(f"Copying the adapter of run '{source.run_id}'"))
    shutil.copytree(source.adapter, export.adapter)
    config = PeftConfig.from_pretrained(str(export.adapter))
    return {"files": sorted(path.name for path in export.adapter.iterdir()),
            "peft_type": getattr(config.peft_type, "value", config.peft_type), "rank": getattr(config, "r", None),
            "base_model": config.base_model_name_or_path,
            "size_bytes": sum(path.stat().st_size for path in export.adapter.iterdir())}


def pack(export: ExportFolder, card: str, steps: Steps) -> dict[str, Any]:
    """Put the model card into the adapter folder, zip it, and test the zip."""
    steps(N_("Packing the adapter into a zip and testing it"))
    (export.adapter / "README.md").write_text(card, encoding="utf-8")
    archive = export.adapter_zip
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as packed:
        for path in sorted(export.adapter.iterdir()):
            packed.write(path, f"{export.export_id}/{path.name}")
    with zipfile.ZipFile(archive) as packed:
        broken = packed.testzip()
    if broken is not None:
        raise StudioError(f"The adapter zip is damaged ({broken}).", "Nothing was exported. Try again.")
    return {"zip": archive.name, "zip_bytes": archive.stat().st_size}

