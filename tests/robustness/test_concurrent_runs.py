"""Two real edgecompress processes pointed at one output directory: the second is refused, not interleaved.

(A lock left by a killed run is taken over: tests/recipe/test_resume.py::test_stale_lock_of_a_dead_run_is_taken_over.)
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
    lock = out / ".edgecompress.lock"
    first = subprocess.Popen(_edgecompress("run", str(EXAMPLE), "--out", str(out)), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not lock.exists() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert lock.exists() and first.poll() is None, "the first run never took the lock"

        second = subprocess.run(_edgecompress("run", str(EXAMPLE), "--out", str(out)), capture_output=True, text=True, timeout=120)

        assert second.returncode == 2
        error = [line for line in second.stderr.splitlines() if line.startswith("error: ")]
        assert error == [f"error: --out: {out} is in use by another edgecompress run (pid {first.pid}); "
                         "wait for it or choose another directory"], second.stderr
        assert "Traceback" not in second.stderr
        assert lock.read_text() == str(first.pid)  # the first run still owns the directory
        assert first.poll() is None  # and it goes on undisturbed
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
