"""`lora-studio doctor --repair`: the index is rebuilt from the folders, and what interrupted writes left goes."""

from pathlib import Path

from test_train import tiny_config

from cli.main import main as cli
from core.data import store
from core.runs import records
from core.workspace import Workspace


def test_repair_rebuilds_a_lost_index_from_the_folders(workspace: Workspace, tiny_model_dir: Path, capsys):
    store.ensure_demo_dataset(workspace)
    hard = store.add_hard_examples(workspace, [[{"role": "user", "content": "Parking?"},
                                                {"role": "assistant", "content": "Free, behind the clinic."}]],
                                   {"run": "r1"})
    run = records.create(workspace, tiny_config(tiny_model_dir, workspace.root / "faq.jsonl", "name=kept"))
    before = store.list_datasets(workspace)
    leftover = workspace.dataset_dir(store.DEMO_DATASET_ID) / ".staging-killed-writer"
    leftover.mkdir()
    workspace.db_path.unlink()   # the index is gone (the folders are not)
    for suffix in ("-wal", "-shm"):
        workspace.db_path.with_name(workspace.db_path.name + suffix).unlink(missing_ok=True)

    assert cli(["doctor", "--workspace", str(workspace.root)]) == 0
    assert "the index has 0 and 0: run 'lora-studio doctor --repair'" in capsys.readouterr().out
    assert cli(["doctor", "--repair", "--workspace", str(workspace.root)]) == 0
    out = capsys.readouterr().out
    assert "Datasets indexed: 2 (2 versions)" in out and "Leftovers of interrupted writes removed: 1" in out
    assert "the index agrees" in out and not leftover.exists()
    assert store.list_datasets(workspace) == before
    assert [summary.rows for summary in store.versions(workspace, store.HARD_EXAMPLES_ID)] == [hard.rows]
    assert [status.run_id for status in records.list_runs(workspace)] == [run.run_id]
