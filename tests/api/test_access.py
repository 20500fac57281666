"""Accounts and roles on a running studio: log-in required, and each role refused, on the server, what it
may not do — through gradio_client, as a script would try it, not only through hidden tabs."""

import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError, AuthenticationError
from support import MEMORISED, QUESTIONS, REPO, RunningStudio, workspace_with_default_model
from tiny import build_tiny_model

from core.accounts.users import Users

PASSWORDS = {"ana": "ana-admin-pw", "rui": "rui-rater-pw", "vic": "vic-viewer-pw"}
ROLES = {"ana": "admin", "rui": "annotator", "vic": "viewer"}


@pytest.fixture(scope="module")
def shared_studio(tmp_path_factory: pytest.TempPathFactory, converted_default_model: Path):
    root = tmp_path_factory.mktemp("shared")
    workspace = workspace_with_default_model(root / "ws", converted_default_model)
    users = Users.load(root / "users.json", must_exist=False)
    for name, role in ROLES.items():
        users.add(name, role, PASSWORDS[name])
    running = RunningStudio(workspace.root, root / "studio.log", "--users", str(root / "users.json"),
                            "--max-upload-mb", "1")
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


def as_user(studio: RunningStudio, name: str) -> Client:
    return Client(studio.url, auth=(name, PASSWORDS[name]), analytics_enabled=False, verbose=False)


def test_nothing_answers_without_logging_in(shared_studio: RunningStudio):
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(shared_studio.url + "gradio_api/info")
    assert refused.value.code == 401
    with pytest.raises(AuthenticationError):
        Client(shared_studio.url, analytics_enabled=False, verbose=False)
    with pytest.raises(ValueError):   # a wrong password does not log in
        Client(shared_studio.url, auth=("ana", "not-her-password"), analytics_enabled=False, verbose=False)


def test_each_role_may_do_only_its_part(shared_studio: RunningStudio):
    admin, rater, viewer = (as_user(shared_studio, name) for name in ("ana", "rui", "vic"))
    assert "demo-clinic-faq" in str(admin.predict(api_name="/list_datasets"))

    for client, role in ((rater, "annotator"), (viewer, "viewer")):
        for endpoint, values in (("/train_start", ()), ("/train_stop", ()), ("/configure_save_preset", ("mine",))):
            with pytest.raises(AppError, match=f"Your role \\({role}\\) does not allow"):
                client.predict(*values, api_name=endpoint)
    viewer.predict(api_name="/train_status")   # a viewer sees run results
    with pytest.raises(AppError, match="annotator"):
        rater.predict(api_name="/train_status")
    # Page-load events of tabs a role does not see give nothing rather than an error.
    assert "demo-clinic-faq" not in str(viewer.predict(api_name="/list_datasets"))
    log = (shared_studio.workspace / "logs" / "studio.log").read_text()   # who did what, and who was refused
    assert "user=rui" in log and "refused start_run (train) to role annotator" in log
    assert all(password not in log for password in PASSWORDS.values())


def test_a_rater_rates_as_who_logged_in_and_only_admins_manage_sessions(shared_studio: RunningStudio):
    from core.rating import generation, ratings, sessions
    from core.workspace import Workspace

    workspace = Workspace.open(shared_studio.workspace)
    build_tiny_model(workspace.model_dir("tiny-rate"), seed=1)
    session = sessions.create(workspace, sessions.SessionSpec("Roles", ["base:tiny-rate"], max_prompts=2,
                                                              max_new_tokens=4))
    generation.generate(workspace, session.id)
    admin, rater, viewer = (as_user(shared_studio, name) for name in ("ana", "rui", "vic"))

    item = rater.predict(session.id, "ana", api_name="/rate_open")[9]   # a typed name cannot stand in for ana
    rater.predict(session.id, "ana", item, "3", "2", "safe", None, "", "", api_name="/rate_save")
    assert {entry.rater for entry in ratings.read_all(workspace, session.id)} == {"rui"}
    for endpoint in ("/rate_results", "/rate_export_csv", "/rate_generate_again", "/rate_delete"):
        with pytest.raises(AppError, match="Your role \\(annotator\\) does not allow"):
            rater.predict(session.id, *([0] if endpoint == "/rate_delete" else []), api_name=endpoint)
    with pytest.raises(AppError, match="Your role \\(viewer\\) does not allow"):
        viewer.predict(session.id, "vic", api_name="/rate_open")
    assert "rui (1 rated)" in admin.predict(session.id, api_name="/rate_results")[0]


def test_the_first_run_guide_is_only_for_roles_that_train(shared_studio: RunningStudio):
    admin, rater, viewer = (as_user(shared_studio, name) for name in ("ana", "rui", "vic"))
    assert "of 7 ·" in admin.predict(api_name="/guide")   # the sentence under the seven steps
    for client, role in ((rater, "annotator"), (viewer, "viewer")):
        for endpoint in ("/guide_hide", "/guide_show", "/guide_go_configure"):
            with pytest.raises(AppError, match=f"Your role \\({role}\\) does not allow"):
                client.predict(api_name=endpoint)
        # Every role switches tabs, which reads the guide: those that may not train get nothing from it.
        assert "of 7 ·" not in str(client.predict(api_name="/guide"))


def test_a_viewer_gets_the_demo_and_an_annotator_is_refused_it(shared_studio: RunningStudio, memorised_runs):
    from core.workspace import Workspace

    memorised_runs.copy_into(Workspace.open(shared_studio.workspace))
    clinic = memorised_runs.run_ids["clinic"]
    rater, viewer = (as_user(shared_studio, name) for name in ("rui", "vic"))
    assert viewer.predict(None, api_name="/demo_runs")["value"] in memorised_runs.run_ids.values()
    assert "### clinic" in viewer.predict(clinic, api_name="/demo_show")[0]
    _, base, tuned = viewer.predict(QUESTIONS[0], [], [], clinic, api_name="/demo_chat")
    assert MEMORISED["clinic"] in str(tuned[-1]["content"]) and base[-1]["role"] == "assistant"

    assert clinic not in str(rater.predict(None, api_name="/demo_runs"))   # a page-load event: nothing, no error
    for endpoint, values in (("/demo_show", (clinic,)), ("/demo_chat", (QUESTIONS[0], [], [], clinic)),
                             ("/demo_clear", ())):
        with pytest.raises(AppError, match="Your role \\(annotator\\) does not allow"):
            rater.predict(*values, api_name=endpoint)
    log = (shared_studio.workspace / "logs" / "studio.log").read_text()
    assert "refused ask_both (chat) to role annotator" in log


def test_every_event_names_the_permission_it_needs(tmp_path: Path):
    from core.workspace import Workspace
    from studio.app import build_app
    from studio.context import StudioContext

    users = Users.load(tmp_path / "users.json", must_exist=False)
    users.add("ana", "admin", PASSWORDS["ana"])
    app = build_app(StudioContext.create(Workspace.open(tmp_path / "ws"), users))
    # Events that reveal and change nothing: the header, page-number arithmetic, closing a dialog.
    harmless = {"studio_status", "pages_for_role", "history_delete_cancel", "chat_clear", "sample_prev", "sample_next",
                "rate_delete_cancel", "rate_pages_for_role", "page_language", "switch_language", "studio_status_again",
                "eval_pick", "show_upload",
                "reject_prev", "reject_next"}
    named = [(block.api_name if block.api_name not in (None, False, "false") else block.fn.__name__, block.fn)
             for block in app.fns.values()   # events hidden from the API docs can still be called
             if block.fn is not None]        # Gradio's own cancel events (a Stop button's `cancels=`) run no code
    unguarded = sorted(name for name, fn in named if not hasattr(fn, "permission") and name not in harmless)
    assert unguarded == []


def test_a_viewer_lands_on_the_demo_and_an_admin_stays_on_data(tmp_path: Path):
    import gradio as gr

    from core.workspace import Workspace
    from studio.app import build_app
    from studio.context import StudioContext

    users = Users.load(tmp_path / "users.json", must_exist=False)
    for name, role in ROLES.items():
        users.add(name, role, PASSWORDS[name])
    app = build_app(StudioContext.create(Workspace.open(tmp_path / "ws"), users))
    (pages_for,) = [block.fn for block in app.fns.values() if block.api_name == "pages_for_role"]
    landing, seen = {}, {}
    for name in ROLES:
        tabs, *pages = pages_for(gr.Request(username=name))
        landing[name] = tabs.selected   # the page-load event moves the selection only for roles without Data
        seen[name] = [page.visible for page in pages][-1]   # the Demo tab, the last one
    assert landing == {"ana": None, "rui": "rate", "vic": "demo"}
    assert seen == {"ana": True, "rui": False, "vic": True}


def test_a_network_address_without_accounts_is_refused(tmp_path: Path):
    done = subprocess.run([sys.executable, "-m", "cli", "ui", "--host", "0.0.0.0", "--workspace", str(tmp_path / "ws")],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "without accounts" in done.stderr and "--users FILE" in done.stderr


def test_uploads_are_limited_and_errors_keep_server_paths_private(shared_studio: RunningStudio, tmp_path: Path):
    from gradio_client import handle_file

    admin = as_user(shared_studio, "ana")
    big = tmp_path / "big.jsonl"
    row = '{"prompt": "When do you open?", "response": "At eight."}\n'
    big.write_text(row * (2 * 2**20 // len(row)))   # 2 MB against a 1 MB limit
    with pytest.raises(Exception, match="exceeds the maximum file size of 1048576 bytes"):   # Gradio refuses it first
        admin.predict(handle_file(str(big)), "big", api_name="/upload_dataset")
    small = tmp_path / "small.jsonl"
    small.write_text(row * 3)
    admin.predict(handle_file(str(small)), "small", api_name="/upload_dataset")
    assert "small" in str(admin.predict(api_name="/list_datasets"))

    from studio.errors import without_server_paths

    message = "The data file /srv/studio/ws/datasets/faq/v1/data.jsonl does not exist."
    assert without_server_paths(message) == "The data file …/v1/data.jsonl does not exist."
