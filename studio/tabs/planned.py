"""What a tab that has not been built yet says, so nobody wonders whether a button is missing."""

from __future__ import annotations

import gradio as gr

PLANS: dict[str, str] = {
    "Evaluate": (
        "**Coming next:** BLEU, ROUGE and perplexity on held-out data (Chinese-aware), the base model and "
        "the tuned one side by side, the worst answers first, and hard examples sent back into a mixed dataset."),
    "Export": (
        "**Coming next:** merged safetensors models with a model card, adapter-only archives, quantised "
        "exports and a local OpenAI-compatible server."),
}


def build(tab: str) -> None:
    gr.Markdown(PLANS[tab], elem_id=f"planned-{tab.lower()}")
