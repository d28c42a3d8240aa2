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
from safetensors import safe_open

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
        if path.is_dir() or ".edgecompress" in path.relative_to(out).parts:  # the lock and temporaries
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


def _run_until(command: list[str], event: Path) -> None:
    """Start `command` and SIGKILL its whole process group as soon as the run writes `event`."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 600  # guards a hang only
    while not event.exists():
        assert process.poll() is None and time.monotonic() < deadline, f"{event.name} never appeared"
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


# Killed on events the run itself writes (not after a number of seconds): during training, then the resumed
# run again mid-stages; one chain covers both kill points and a resume of a resumed run.
def test_kill_9_then_resume_gives_the_uninterrupted_result(demo_run, tmp_path):
    _, uninterrupted = demo_run  # the demo is this very recipe, run without interruption
    out = tmp_path / "run"
    command = [sys.executable, "-m", "edgecompress.cli", "run", str(EXAMPLE), "--out", str(out)]
    _run_until(command, out / "checkpoints" / "00-trained.json")
    _assert_every_file_is_complete(out)
    assert not (out / "checkpoints" / "02-finetune.json").exists()

    _run_until([*command, "--resume"], out / "checkpoints" / "02-finetune.json")
    _assert_every_file_is_complete(out)
    assert not (out / "metrics.json").exists()

    done = subprocess.run([*command, "--resume"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    _assert_every_file_is_complete(out)
    resumed = json.loads((out / "metrics.json").read_text())
    assert _comparable(resumed) == _comparable(uninterrupted)
    assert os.listdir(tmp_path) == ["run"] and not (out / ".edgecompress" / "tmp").exists()
