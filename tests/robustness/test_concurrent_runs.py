"""Two real edgecompress processes pointed at one output directory: the second is refused, not interleaved.

(Twelve racing processes, and a lock that ends with its process: tests/robustness/test_lock.py.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "digits.yaml"


def _edgecompress(*args: str) -> list[str]:
    return [sys.executable, "-m", "edgecompress.cli", *args]


def test_a_second_process_on_a_directory_in_use_is_refused(tmp_path):
    out = tmp_path / "run"
    manifest = out / ".edgecompress" / "manifest.json"
    first = subprocess.Popen(_edgecompress("run", str(EXAMPLE), "--out", str(out)), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 600  # guards a hang only: the event is the manifest the owner writes
        while not manifest.exists() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert manifest.exists() and first.poll() is None, "the first run never took the directory"
        # paused while it holds the directory: on a busy machine the second's start-up could outlast the whole first run
        os.killpg(first.pid, signal.SIGSTOP)

        second = subprocess.run(_edgecompress("run", str(EXAMPLE), "--out", str(out)), capture_output=True, text=True, timeout=600)

        assert second.returncode == 2
        error = [line for line in second.stderr.splitlines() if line.startswith("error: ")]
        assert error == [f"error: --out: {out} is in use by another edgecompress command; "
                         "wait for it to finish or choose another directory"], second.stderr
        assert "Traceback" not in second.stderr
        assert first.poll() is None  # the first run goes on undisturbed
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
