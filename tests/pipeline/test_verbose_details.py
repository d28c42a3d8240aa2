"""The detail line `--verbose` adds after each stage says what the model holds, what the stage set, and where
the rest is."""

from __future__ import annotations

import edgecompress as ec
from edgecompress.orchestration.pipeline.run import Measurement, measured_line


def _measurement(**details) -> Measurement:
    return Measurement("prune", 97.5, "stages/01-prune.onnx", 72_869, 17_810, 17_700, 17_600, seconds=3.21, details=details)


def test_a_stage_line_has_sizes_time_changed_settings_and_what_metrics_json_adds():
    line = measured_line("stage 1/2 (prune)", _measurement(prune_paths={}), ec.Prune(pattern=ec.Unstructured(), amount=0.9, layers=("fc*",)))
    assert line == (
        "stage 1/2 (prune): 17,810 params (17,700 nonzero), 17,600 MACs, stages/01-prune.onnx 72,869 B, 3.2 s; "
        'settings: pattern {"kind": "unstructured"}, amount 0.9, layers ["fc*"]; in metrics.json: prune_paths'
    )


def test_default_settings_are_said_and_a_quantize_mode_is_always_named():
    assert measured_line("baseline", _measurement()).endswith("72,869 B, 3.2 s")
    assert "; settings: the defaults" in measured_line("stage 1/1 (finetune)", _measurement(), ec.Finetune())
    assert "; settings: mode dynamic;" in measured_line("stage 2/2 (quantize)", _measurement(int8={}), ec.QuantizeDynamic())
