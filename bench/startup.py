"""Start-up figures of the studio: one-time preparation, and seconds from `lora-studio ui` to HTTP 200.

    .venv/bin/python bench/startup.py            # prints the figures and the ratio to the 15 s target

Runs on a throw-away workspace. The one-time conversion of the default model is measured on its own;
the start time is measured on a workspace where it is already done (the normal case after set-up).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET_START_S = 15.0


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "cli", *args]


def seconds_to_http_200(workspace: Path, port: int = 7891) -> float:
    started = time.monotonic()
    process = subprocess.Popen(cli("ui", "--workspace", str(workspace), "--port", str(port)), cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.monotonic() - started < 120:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as response:
                    if response.status == 200:
                        return time.monotonic() - started
            except OSError:
                time.sleep(0.1)
        raise TimeoutError("the studio did not answer within 120 s")
    finally:
        process.terminate()
        process.wait(timeout=30)


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        workspace = Path(folder) / "ws"
        started = time.monotonic()
        subprocess.run(cli("prepare", "--workspace", str(workspace)), cwd=REPO, check=True, capture_output=True)
        prepare_s = time.monotonic() - started
        starts = [seconds_to_http_200(workspace) for _ in range(3)]
    best, worst = min(starts), max(starts)
    print(f"one-time prepare (convert default model, load demo data): {prepare_s:.1f} s")
    print(f"start to HTTP 200, 3 starts: best {best:.1f} s, worst {worst:.1f} s")
    print(f"target {TARGET_START_S:.0f} s; worst start is {worst / TARGET_START_S:.2f}x the target")


if __name__ == "__main__":
    main()
