"""The export job (kind "export" in core.jobs.worker.JOB_KINDS): one run's adapter in one format, checked,
with its model card. export.json is written last, and only once the check passed; a failure or a Cancel
removes the partial files.

    run(workspace, folder, {"run_id": "faq-r16", "format": "merged"}, progress) -> one-line summary

merged: merge and check (core.export.merge). int8, nf4 and GGUF: the same merged model, checked, then
quantised or converted from it (core.export.quantise, core.export.gguf) and checked again. adapter:
the peft folder and its zip (core.export.adapter).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from core.evaluation import results
from core.export import adapter, card, formats, gguf, merge, quantise, records, source
from core.export.steps import Steps
from core.progress import Progress
from core.rating import results as rating_results
from core.text import N_
from core.workspace import ExportFolder, Workspace, now_iso

STEP_COUNTS = {"adapter": adapter.STEPS, "merged": merge.STEPS, "int8": merge.STEPS + quantise.STEPS,
               "nf4": merge.STEPS + quantise.STEPS, "gguf-f16": merge.STEPS + gguf.STEPS,
               "gguf-q8_0": merge.STEPS + gguf.STEPS}


def run(workspace: Workspace, folder: Path, settings: dict[str, Any], progress: Progress) -> str:
    chosen = formats.check_available(settings["format"])
    made_from = source.load(workspace, settings["run_id"])
    export = ExportFolder(folder)
    steps = Steps(progress, STEP_COUNTS[chosen.key])
    try:
        verification, files = _build(workspace, made_from, export, chosen.key, steps, settings)
        text = card.render(card.CardFacts(export.export_id, chosen, made_from, verification, files, now_iso()),
                           evaluation=results.card_summary(workspace, settings["run_id"]),
                           ratings=rating_results.card_summary(workspace, settings["run_id"]))
        export.card.write_text(text, encoding="utf-8")
        if chosen.key == "adapter":
            verification = {**verification, **adapter.pack(export, text, steps)}
            files = [export.adapter_zip.name, *files]
        if chosen.model_dir:
            (export.model / "README.md").write_text(text, encoding="utf-8")
        generation = made_from.config.generation
        records.complete(export, {
            "kind": chosen.key, "run_id": made_from.run_id, "base_model": made_from.base, "files": files,
            "size_bytes": sum(_bytes(export.root / name) for name in files), "verification": verification,
            # What chat needs to answer as the run did: the template is inside the folder's tokenizer now.
            **({"model_dir": export.model.name, "template": "auto", "system_prompt": made_from.config.data.system_prompt,
                "generation": generation.model_dump()} if chosen.model_dir else {})})
    except BaseException:
        records.discard_outputs(export)
        raise
    finally:
        shutil.rmtree(export.staging, ignore_errors=True)
    steps.finish(N_("Export complete and checked"))
    checked = records.check_in_words(verification)
    return N_(f"Exported run '{made_from.run_id}' as {chosen.label} into exports/{export.export_id}: {checked}.")


def _build(workspace: Workspace, made_from: source.RunSource, export: ExportFolder, key: str, steps: Steps,
           settings: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Write the format's files and check them; returns (the check's figures, the files to hand out)."""
    if key == "adapter":
        return adapter.copy(made_from, export, steps), [f"{export.adapter.name}/"]
    merged = export.model if key == "merged" else export.staging
    merging = merge.write(workspace, made_from, merged, steps, settings.get("max_shard_size", merge.MAX_SHARD_SIZE))
    if key == "merged":
        return merging, [f"{export.model.name}/"]
    if key in ("int8", "nf4"):
        return {"merge": merging, **quantise.write(workspace, made_from, merged, export.model, key, steps)}, \
            [f"{export.model.name}/"]
    outtype = key.removeprefix("gguf-")
    return {"merge": merging, **gguf.write(workspace, made_from, merged, export, outtype, steps)}, \
        [export.gguf(outtype).name, export.modelfile.name]


def _bytes(path: Path) -> int:
    path = path if path.exists() else path.with_name(path.name.rstrip("/"))
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file()) if path.is_dir() else path.stat().st_size

