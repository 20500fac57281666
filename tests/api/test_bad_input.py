"""Every endpoint of the studio, called as a script could call it, with nothing filled in, with wrong types
and with NaN: each answers normally or refuses in words, never with an unexpected error. The device is held
by the test throughout, so no call can start real work.

Also a page that still shows a run another user has deleted: it says so."""

import math

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from core.system.device_lock import DeviceLock
from core.workspace import Workspace

STUDIO_MEMORISED_RUNS = True
UNEXPECTED = "Unexpected error in a UI handler"   # what studio.errors logs for an exception it did not foresee


def connect(url: str) -> Client:
    return Client(url, analytics_enabled=False, verbose=False)


def sweep(client: Client, endpoints: dict, value_for) -> list[str]:
    """Call every endpoint with `value_for(parameter)` for each parameter; the calls that failed without a
    message of ours."""
    mute = []
    for name, spec in endpoints.items():
        values = [value_for(parameter) for parameter in spec["parameters"]]
        try:
            client.predict(*values, api_name=name)
        except AppError as error:
            if not str(error).strip() or "Traceback" in str(error):
                mute.append(f"{name}: {error!r}")
        except Exception as error:  # noqa: BLE001 - gradio_client's own errors: a crash without words
            mute.append(f"{name}: {error!r}")
    return mute


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
        mute = sweep(client, endpoints, value_for)
    after = log.read_text()[len(before):]
    assert UNEXPECTED not in after, after[after.index(UNEXPECTED) - 300:][:3000]
    assert mute == []


def test_a_page_showing_a_run_that_was_deleted_says_so(studio):
    follower, deleter = connect(studio.url), connect(studio.url)
    run_id = deleter.predict(api_name="/history_list")[0]["data"][0][1]
    follower.predict(run_id, api_name="/history_open")
    deleter.predict(run_id, api_name="/history_delete")
    with pytest.raises(AppError, match=f"{run_id}"):
        follower.predict(run_id, api_name="/history_open")
    follower.predict(api_name="/train_poll")   # the open page's timer keeps ticking without an error
