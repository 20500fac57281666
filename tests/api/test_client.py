"""The running app driven through gradio_client, as a script or another program would."""

from gradio_client import Client

from core.data import store


def test_status_datasets_and_chat_over_the_api(studio):
    client = Client(studio.url, analytics_enabled=False, verbose=False)

    status = client.predict(api_name="/studio_status")
    assert str(studio.workspace) in status and "dataset" in status
    assert (studio.workspace / "studio.db").is_file()            # --workspace created and used

    table = client.predict(api_name="/list_datasets")
    assert store.DEMO_DATASET_ID in str(table)

    message, history, _, stats, _ = client.predict("Say hello.", [], [], "base:default", "base:default", False,
                                                   "", 0, 24, 0.9, 1.1, api_name="/chat")
    assert message == ""
    assert history[-1]["role"] == "assistant"
    reply = history[-1]["content"]
    text = reply if isinstance(reply, str) else "".join(part["text"] for part in reply)
    assert text.strip() and text != "…" and "First token after" in stats

