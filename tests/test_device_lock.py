"""The one device lock: held across processes, named in the refusal, released on every way out."""

import subprocess
import sys
import textwrap

import pytest
from support import REPO

from core.errors import DeviceBusyError
from core.system.device_lock import DeviceLock
from core.workspace import Workspace

HOLD_IN_ANOTHER_PROCESS = textwrap.dedent("""
    import sys, time
    from core.system.device_lock import DeviceLock
    from core.workspace import Workspace
    with DeviceLock(Workspace.open(sys.argv[1])).hold("an evaluation in another process"):
        print("held", flush=True)
        time.sleep(600)
""")


def test_the_lock_is_held_across_processes_and_freed_when_its_holder_is_killed(workspace: Workspace):
    other = subprocess.Popen([sys.executable, "-c", HOLD_IN_ANOTHER_PROCESS, str(workspace.root)], cwd=REPO,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "held"
        lock = DeviceLock(workspace)
        assert lock.holder().pid == other.pid
        with pytest.raises(DeviceBusyError, match="busy with an evaluation in another process"):
            with lock.hold("a chat reply"):
                pass
    finally:
        other.kill()   # SIGKILL: no clean-up code runs in the holder
        other.wait()
    assert lock.holder() is None   # its device.json is still there, naming a dead process
    with lock.hold("a chat reply", timeout=5):
        assert lock.holder().purpose == "a chat reply"


def test_the_lock_is_released_when_the_holder_fails_and_threads_of_one_process_exclude_each_other(
        workspace: Workspace):
    lock = DeviceLock(workspace)
    with pytest.raises(ValueError):
        with lock.hold("a merge"):
            raise ValueError("the merge failed")
    assert lock.holder() is None
    with lock.hold("a chat reply"):
        with pytest.raises(DeviceBusyError, match="a chat reply"):
            with lock.hold("a second chat reply"):   # the same process, as another request thread would
                pass
    with DeviceLock(workspace).hold("the next job"):
        pass
