"""Every endpoint of the studio, called as a script could call it, with nothing filled in, with wrong types
and with NaN: each answers normally or refuses in words, never with an unexpected error. The device is held
by the test throughout, so no call can start real work.

Also a page that still shows a run another user has deleted: it says so."""

import json
import math
import re
import urllib.request

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from core.system.device_lock import DeviceLock
from core.workspace import Workspace

STUDIO_MEMORISED_RUNS = True
UNEXPECTED = "Unexpected error in a UI handler"   # what studio.errors logs for an exception it did not foresee


def connect(url: str) -> Client:
    return Client(url, analytics_enabled=False, verbose=False)


def call(client: Client, url: str, name: str, values: list) -> str | None:
    """Call an endpoint; what failed without a message of ours, else None. NaN cannot pass through
    gradio_client (its JSON encoder refuses it), so values holding NaN go as raw JSON, as any script can."""
    if any(isinstance(value, float) and math.isnan(value) for value in values):
        body = json.dumps({"data": values}).encode()   # json writes NaN, and the server's JSON reader takes it
        request = urllib.request.Request(f"{url}gradio_api/call{name}", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            event = json.load(response)["event_id"]
        with urllib.request.urlopen(f"{url}gradio_api/call{name}/{event}", timeout=60) as response:
            response.read()   # the stream ends with the result or the error; the log says which kind
        return None
    try:
        client.predict(*values, api_name=name)
    except AppError as error:
        if not str(error).strip() or "Traceback" in str(error):
            return f"{name}: {error!r}"
    except Exception as error:  # noqa: BLE001 - gradio_client's own errors: a crash without words
        return f"{name}: {error!r}"
    return None


@pytest.mark.parametrize("kind", ["empty", "wrong types", "NaN"])
def test_every_endpoint_refuses_bad_input_in_words(studio, kind: str):
    client = connect(studio.url)
    endpoints = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert len(endpoints) > 50
    log = studio.workspace / "logs" / "studio.log"
    before = log.read_text() if log.exists() else ""

    def value_for(parameter: dict):
        wanted = parameter.get("python_type", {}).get("type", "")
        if kind == "empty":
            return None
        if kind == "NaN":
            return math.nan if wanted in ("float", "int") else None
        return {"str": 12345, "float": "not a number", "int": "seven", "bool": "maybe"}.get(wanted, [1, "x"])

    with DeviceLock(Workspace(studio.workspace)).hold("the bad-input sweep"):
        mute = [found for name, spec in endpoints.items()
                if (found := call(client, studio.url, name, [value_for(p) for p in spec["parameters"]]))]
    after = log.read_text()[len(before):]
    crashes = [_summary(block) for block in after.split(UNEXPECTED)[1:]]
    assert crashes == [] and mute == [], "\n".join(crashes + mute)


def _summary(block: str) -> str:
    """'ValueError: … at studio/tabs/configure.py:50 in validation_file_of' from one logged traceback."""
    lines = []
    for line in block.splitlines()[1:]:
        if re.match(r"\d{4}-\d\d-\d\d ", line):
            break
        lines.append(line)
    frames = re.findall(r'File "[^"]*/((?:studio|core)/[^"]+)", line (\d+), in (\w+)', "\n".join(lines))
    where = f" at {frames[-1][0]}:{frames[-1][1]} in {frames[-1][2]}" if frames else ""
    return (lines[-1].strip() if lines else "?") + where


def test_a_page_showing_a_run_that_was_deleted_says_so(studio):
    follower, deleter = connect(studio.url), connect(studio.url)
    run_id = deleter.predict(api_name="/history_list")[0]["data"][0][-1]
    follower.predict(api_name="/history_list")   # the page lists the runs when it loads
    follower.predict(run_id, api_name="/history_open")
    deleter.predict(run_id, api_name="/history_delete")
    with pytest.raises(AppError, match=f"{run_id}"):
        follower.predict(run_id, api_name="/history_open")
    banner = follower.predict(api_name="/train_poll")[0]   # the open page's next tick says so, once
    assert f"Run **{run_id}** was deleted" in banner
