"""Data tab: the datasets in the workspace (upload, cleaning and versions arrive with the data issue)."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from core import data
from studio.context import StudioContext
from studio.errors import friendly

COLUMNS = ["Dataset", "Id", "Latest version", "Conversations", "Source file", "Added"]


def build(ctx: StudioContext, app: gr.Blocks) -> None:
    gr.Markdown("Datasets in this workspace. Uploading, validating, cleaning and versioning your own "
                "files is coming next; the built-in demo dataset is ready to train on.")
    table = gr.Dataframe(headers=COLUMNS, interactive=False, elem_id="datasets-table", wrap=True)

    @friendly
    def list_datasets() -> pd.DataFrame:
        rows = [(d.name, d.id, f"v{d.latest_version}", d.rows, d.source_file, d.created)
                for d in data.list_datasets(ctx.workspace)]
        return pd.DataFrame(rows, columns=COLUMNS)

    app.load(list_datasets, None, table, api_name="list_datasets", show_progress="hidden")
