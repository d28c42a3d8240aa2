"""A run killed with SIGKILL leaves only complete files, and --resume ends where an uninterrupted run ends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import onnx
import pytest
from safetensors import safe_open

from edgecompress.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "digits.yaml"
VOLATILE = {"latency_ms", "latency_iqr_ms", "seconds"}


def _comparable(metrics: dict) -> dict:
    """metrics.json without the timing fields, which differ between any two runs."""
    strip = lambda entry: {k: v for k, v in entry.items() if k not in VOLATILE}  # noqa: E731
    out = {k: v for k, v in metrics.items() if k not in ("summary", "baseline", "final", "stages", "environment")}
    out["baseline"], out["final"] = strip(metrics["baseline"]), strip(metrics["final"])
    out["stages"] = [strip(s) for s in metrics["stages"]]
    out["size_ratio"] = metrics["summary"]["size_ratio"]
    return out


def _assert_every_file_is_complete(out: Path) -> None:
    for path in out.rglob("*"):
        if path.is_dir():
            continue
        assert not path.name.endswith(".part"), f"partial file left: {path}"
        if path.suffix == ".onnx":
            onnx.checker.check_model(onnx.load(str(path)))
        elif path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".png":
            data = path.read_bytes()
            assert data.startswith(b"\x89PNG") and data.endswith(b"IEND\xaeB`\x82"), path
        elif path.suffix == ".safetensors":
            with safe_open(str(path), framework="pt") as handle:
                assert list(handle.keys())
        elif path.suffix == ".html":
            assert path.read_text().rstrip().endswith("</html>")


@pytest.mark.parametrize("kill_after", [3.0, 7.5])
def test_kill_9_then_resume_gives_the_uninterrupted_result(kill_after, demo_run, tmp_path):
    _, uninterrupted = demo_run  # the demo is this very recipe, run without interruption
    out = tmp_path / "run"
    command = [sys.executable, "-m", "edgecompress.cli", "run", str(EXAMPLE), "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    time.sleep(kill_after)
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    if out.exists():
        _assert_every_file_is_complete(out)

    done = subprocess.run([*command, "--resume"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    _assert_every_file_is_complete(out)
    resumed = json.loads((out / "metrics.json").read_text())
    assert _comparable(resumed) == _comparable(uninterrupted)
    staging = out.parent / f".{out.name}.edgecompress-staging"
    assert not staging.exists() and not (out / ".edgecompress.lock").exists()


def test_second_run_on_a_directory_in_use_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / ".edgecompress.lock").write_text(str(holder.pid))
        assert main(["run", str(EXAMPLE), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert f"is in use by another edgecompress run (pid {holder.pid})" in err and err.count("\n") == 1
        assert sorted(p.name for p in out.iterdir()) == [".edgecompress.lock"]
    finally:
        holder.kill()
        holder.wait()


def test_stale_lock_of_a_dead_run_is_taken_over(tmp_path):
    from edgecompress.rundir import owned_run_dir

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = tmp_path / "run"
    out.mkdir()
    (out / ".edgecompress.lock").write_text(str(dead.pid))
    with owned_run_dir(out) as owned:
        assert (owned / ".edgecompress.lock").read_text() == str(os.getpid())
    assert not (out / ".edgecompress.lock").exists()
