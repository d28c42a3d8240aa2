"""The same model, recipe and seed give byte-identical artifacts and identical metrics (timings aside)."""

import json

import edgecompress as ec

TIMING = {"latency_ms", "latency_iqr_ms", "seconds"}


def _without_timing(metrics):
    strip = lambda e: {k: v for k, v in e.items() if k not in TIMING}  # noqa: E731
    return {
        "baseline": strip(metrics["baseline"]),
        "stages": [strip(s) for s in metrics["stages"]],
        "size_ratio": metrics["summary"]["size_ratio"],
        "storage_ratio": metrics["summary"]["storage_ratio"],
    }


def test_two_runs_are_identical(trained_cnn, digits, tmp_path):
    stages = [
        ec.Prune(pattern="unstructured", criterion="random", amount=0.6, schedule="gradual", epochs=2, steps=3),
        ec.Qat(bits=4, epochs=1),
        ec.Quantize(calibration="entropy"),
    ]
    runs = [tmp_path / "a", tmp_path / "b"]
    for out in runs:
        ec.compress(trained_cnn, digits, stages, out, seed=7)
    a, b = runs
    for name in ("baseline.onnx", "stages/01-prune.onnx", "stages/02-qat.onnx", "final.onnx", "final.ecz", "model.safetensors"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    metrics = [json.loads((out / "metrics.json").read_text()) for out in runs]
    assert _without_timing(metrics[0]) == _without_timing(metrics[1])
