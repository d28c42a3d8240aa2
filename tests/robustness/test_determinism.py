"""The same model, recipe and seed give byte-identical artifacts and identical metrics (timings aside).

The encoder int8 route has its own: tests/encoders/test_compress_int8.py (same files, same metrics.json).
"""

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
    assert _every_field_but_timing(metrics[0]) == _every_field_but_timing(metrics[1])


def _every_field_but_timing(document):
    """The whole document, at every depth, without the fields that time something (they differ run to run)."""
    if isinstance(document, dict):
        return {k: _every_field_but_timing(v) for k, v in document.items() if not _is_timing(k)}
    if isinstance(document, list):
        return [_every_field_but_timing(v) for v in document]
    return document


def _is_timing(key: str) -> bool:
    return key in TIMING or "latency" in key or "speedup" in key



def test_model_safetensors_is_byte_identical_whatever_the_hash_order(tmp_path):
    """safetensors writes its metadata in hash-map order, which changes from one save to the next (and between
    processes); edgecompress sorts it, so the same model always gives the same bytes."""
    from edgecompress.core.models import DigitsCNN
    from edgecompress.core.models.checkpoint import save_model_file

    model = DigitsCNN()
    saved = {save_model_file(model, tmp_path / f"{n}.safetensors", arch="digits-cnn").read_bytes() for n in range(16)}
    assert len(saved) == 1
    header = saved.pop()[8:400].decode(errors="replace")
    assert header.index('"edgecompress.arch"') < header.index('"edgecompress.layer_sizes"')
