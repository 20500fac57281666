"""The Chat and Export tabs driven through gradio_client against the real studio process, over two runs
that memorised different answers: each run answers as trained, side by side answers twice at once, a
run's reply settings become the defaults, and an export runs as a job to a tested zip."""

import time
import zipfile
from pathlib import Path

import pytest
from gradio_client import Client
from support import MEMORISED, QUESTIONS

from core.system.device_lock import DeviceLock
from core.workspace import Workspace

STUDIO_MEMORISED_RUNS = True
GREEDY = ("", 0, 64, 0.9, 1.0)   # system prompt, temperature, longest reply, top-p, repetition penalty


def connect(url: str) -> Client:
    return Client(url, analytics_enabled=False, verbose=False)


def text_of(message: dict) -> str:
    content = message["content"]
    return content if isinstance(content, str) else "".join(part.get("text", "") for part in content)


def test_chatting_with_runs_one_at_a_time_and_side_by_side(studio):
    client = connect(studio.url)
    model_a, model_b = client.predict("base:default", "base:default", api_name="/chat_models")
    keys = {key for _, key in model_a["choices"]}
    assert {"base:default", "run:clinic", "run:garage"} <= keys

    system, temperature, longest, top_p, penalty, label = client.predict("run:clinic", api_name="/chat_defaults")
    assert (temperature, longest) == (0, 24) and "clinic" in label["label"]

    message, history_a, _, stats_a, _ = client.predict(QUESTIONS[0], [], [], "run:garage", "base:default", False,
                                                       *GREEDY, api_name="/chat")
    assert message == "" and text_of(history_a[-1]) == MEMORISED["garage"]
    assert "First token after" in stats_a and "tokens" in stats_a

    # The same conversation goes on with the other run: hot switch between messages.
    _, history_a, _, _, _ = client.predict(QUESTIONS[1], history_a, [], "run:clinic", "base:default", False, *GREEDY,
                                           api_name="/chat")
    assert [text_of(turn) for turn in history_a if turn["role"] == "assistant"] == [MEMORISED["garage"], MEMORISED["clinic"]]

    _, left, right, stats_left, stats_right = client.predict(QUESTIONS[2], [], [], "run:clinic", "run:garage", True,
                                                             *GREEDY, api_name="/chat")
    assert (text_of(left[-1]), text_of(right[-1])) == (MEMORISED["clinic"], MEMORISED["garage"])
    assert "First token after" in stats_left and "First token after" in stats_right


def test_chat_says_who_has_the_device(studio):
    client = connect(studio.url)
    with DeviceLock(Workspace.open(studio.workspace)).hold("training run 'demo'"):   # as a job process would
        with pytest.raises(Exception, match="busy with training run 'demo'"):
            client.predict(QUESTIONS[0], [], [], "run:clinic", "base:default", False, *GREEDY, api_name="/chat")
    _, history, _, _, _ = client.predict(QUESTIONS[0], [], [], "run:clinic", "base:default", False, *GREEDY,
                                         api_name="/chat")
    assert text_of(history[-1]) == MEMORISED["clinic"]


def test_an_adapter_export_runs_as_a_job_and_its_zip_downloads(studio, tmp_path: Path):
    client = connect(studio.url)
    client.predict(api_name="/export_list")
    client.predict("clinic", "adapter", "clinic to share", api_name="/export_start")
    deadline = time.monotonic() + 180
    banner = ""
    while time.monotonic() < deadline and "✓ Done" not in banner:
        banner = client.predict(api_name="/export_poll")[0]
        assert "Failed" not in banner, banner
        time.sleep(0.5)
    assert "✓ Done" in banner and "zip of" in banner
    table = client.predict(api_name="/export_list")[0]
    assert ["clinic-to-share", "Adapter only (zip)", "clinic", "✓ complete"] == table["data"][0][:4]

    download, location, card = client.predict("clinic-to-share", api_name="/export_show")
    with zipfile.ZipFile(download["value"]) as packed:   # a visibility update carrying the file, fetched by the client
        assert "clinic-to-share/adapter_config.json" in packed.namelist()
    assert "clinic-to-share" in location and "## How this export was checked" in card

    refused = None
    try:
        client.predict("clinic", "nf4", "", api_name="/export_start")
    except Exception as error:  # noqa: BLE001 - gradio_client raises AppError with the message
        refused = str(error)
    assert refused and "refused on the CPU" in refused
