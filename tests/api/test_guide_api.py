"""The first-run guide over the API, as the page reads it on a tab switch: step 1 (Data) on a fresh
workspace, step 2 (Configure, with the cleaned version and the quick CPU preset) once the demo is cleaned."""

from gradio_client import Client

from core.data import cleaning, store
from core.workspace import Workspace


def test_the_guide_starts_at_data_and_moves_on_once_a_dataset_is_cleaned(studio):
    client = Client(studio.url, analytics_enabled=False, verbose=False)
    fresh = client.predict(api_name="/guide")   # the sentence under the steps (buttons are no API values)
    assert fresh.startswith("**Step 1 of 7 · Data.**") and "Save cleaned version" in fresh and "Done so far" not in fresh

    workspace = Workspace.open(studio.workspace)   # the studio reads the same folders
    store.clean_version(workspace, store.DEMO_DATASET_ID, 1, cleaning.CleanOptions(steps=("duplicates",)))
    cleaned = client.predict(api_name="/guide")
    assert cleaned.startswith("**Step 2 of 7 · Configure.**")
    assert "*Demo: clinic patient FAQ (zh/en) · v2*" in cleaned and "**Quick demo (CPU)**" in cleaned
    assert "Done so far: the demo dataset has 2 versions." in cleaned
