"""Files handed to the browser as downloads. The studio serves no folder of the workspace: a handler that
may give a file (its permission checked, studio.access) returns a copy made here, which Gradio moves into
its own cache under an unguessable address — so a role without the right cannot fetch exports by path.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path


def offer(path: Path, name: str | None = None) -> str:
    """A copy of `path` (named `name`, default its own name) for a gr.File / gr.DownloadButton output."""
    folder = Path(tempfile.mkdtemp(prefix="lora-studio-download-"))
    copy = folder / (name or Path(path).name)
    shutil.copyfile(path, copy)
    return str(copy)
