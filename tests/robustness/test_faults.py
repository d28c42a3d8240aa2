"""Faults in the middle of a run (a full disk, a failing metric) leave only complete files, and resume works."""

from __future__ import annotations

import errno
import json
import os

import pytest

import edgecompress as ec
from edgecompress.cli import main
from edgecompress.core.tasks.digits import ACCURACY
from edgecompress.storage import files


def _only_complete_files(out):
    leftovers = [p for p in out.rglob("*") if p.name.endswith(".part")]  # temporaries included
    assert leftovers == []
    for path in out.rglob("*.json"):
        json.loads(path.read_text())


def test_full_disk_mid_run_fails_cleanly_and_resume_finishes(trained_cnn, digits, tmp_path, monkeypatch):
    out = tmp_path / "run"
    real_replace = files._replace
    writes = {"n": 0}

    def disk_fills_up(tmp, target):
        writes["n"] += 1
        if target.suffix == ".onnx" and "quantize" not in str(target) and writes["n"] > 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(tmp, target)

    monkeypatch.setattr(files, "_replace", disk_fills_up)
    stages = [ec.Prune(pattern="unstructured", amount=0.5), ec.Finetune(epochs=1), ec.Quantize()]
    with pytest.raises((OSError, ec.RunFailure), match="No space left"):
        ec.compress(trained_cnn, digits, stages, out)
    _only_complete_files(out)
    assert not (out / "final.onnx").exists() and not (out / ".edgecompress" / "tmp").exists()

    monkeypatch.setattr(files, "_replace", real_replace)
    result = ec.compress(trained_cnn, digits, stages, out, resume=True)
    uninterrupted = ec.compress(trained_cnn, digits, stages, tmp_path / "clean")
    assert result.final.score == uninterrupted.final.score
    assert (out / "final.onnx").read_bytes() == (tmp_path / "clean" / "final.onnx").read_bytes()


def test_exception_in_the_users_metric_is_one_line_and_resumable(trained_cnn, digits, tmp_path):
    calls = {"n": 0}

    def flaky_accuracy(outputs, targets):
        calls["n"] += 1
        if calls["n"] == 3:
            raise ValueError("metric service unavailable")
        return ACCURACY.fn(outputs, targets)

    task = ec.Task("flaky", digits.train_loader, digits.eval_loader, ec.Metric("accuracy", flaky_accuracy, unit="%"))
    stages = [ec.Prune(pattern="unstructured", amount=0.5), ec.Quantize()]
    with pytest.raises(ec.RunFailure, match="metric 'accuracy' raised ValueError: metric service unavailable"):
        ec.compress(trained_cnn, task, stages, tmp_path / "run")
    _only_complete_files(tmp_path / "run")
    result = ec.compress(trained_cnn, task, stages, tmp_path / "run", resume=True)
    assert result.final.score > 0


def test_runtime_failure_from_the_cli_is_one_line_exit_1(tmp_path, capsys, monkeypatch):
    from edgecompress.orchestration.recipe import run as recipe_run

    def broken(*args, **kwargs):
        raise ec.RunFailure("quantize: ONNX Runtime static quantization failed: simulated")

    monkeypatch.setattr(recipe_run, "compress", broken)
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model: digits-cnn\nstages:\n  - stage: quantize\n")
    assert main(["run", str(recipe), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "simulated" in err and "--debug" in err and "Traceback" not in err
    assert main(["--debug", "run", str(recipe), "--out", str(tmp_path / "out")]) == 1
    assert "Traceback" in capsys.readouterr().err


# One target of each kind a run writes, in the order a run writes them.
EACH_KIND = ["baseline.onnx", "checkpoints/00-baseline.json", "final.onnx", "checkpoints/01-prune.safetensors",
             "final.ecz", "model.safetensors", "plots/stages.png", "report.html", "metrics.json"]


def test_a_full_disk_while_writing_each_kind_of_output_then_resume(trained_cnn, digits, tmp_path, monkeypatch):
    """The disk fills up at each kind of file in turn; every failed run leaves only complete files and no
    lock, and each --resume continues, until the last one ends exactly where an uninterrupted run ends."""
    stages = [ec.Prune(pattern="unstructured", amount=0.5)]
    clean = ec.compress(trained_cnn, digits, stages, tmp_path / "clean")
    out = tmp_path / "run"
    real_replace = files._replace
    for failing in EACH_KIND:

        def disk_full_at(tmp, target, failing=failing):
            if target.resolve() == (out / failing).resolve():
                raise OSError(errno.ENOSPC, "No space left on device")
            return real_replace(tmp, target)

        monkeypatch.setattr(files, "_replace", disk_full_at)
        with pytest.raises((OSError, ec.RunFailure), match="No space left"):
            ec.compress(trained_cnn, digits, stages, out, resume=True)
        _only_complete_files(out)
        assert not (out / failing).exists(), failing
        assert not (out / ".edgecompress" / "tmp").exists() and sorted(os.listdir(tmp_path)) == ["clean", "run"]
    monkeypatch.setattr(files, "_replace", real_replace)
    resumed = ec.compress(trained_cnn, digits, stages, out, resume=True)
    assert resumed.final.score == clean.final.score
    for name in ("final.onnx", "final.ecz", "model.safetensors"):
        assert (out / name).read_bytes() == (tmp_path / "clean" / name).read_bytes(), name
