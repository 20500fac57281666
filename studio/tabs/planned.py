"""What a tab that has not been built yet says, so nobody wonders whether a button is missing."""

from __future__ import annotations

import gradio as gr

PLANS: dict[str, str] = {
    "Rate": (
        "**Coming next:** human rating sessions: fluency 1-4, relevance 1-3 and safety with categories, "
        "blind and shuffled, pairwise A/B, several raters with agreement statistics and confidence intervals."),
}


def build(tab: str) -> None:
    gr.Markdown(PLANS[tab], elem_id=f"planned-{tab.lower()}")
