"""Numerical edge cases get clear handling, never silent garbage.

- NaN/Inf in weights: refused naming the tensor (test_bad_data.py::test_nan_weights_are_refused); in data:
  the first batch of each loader is checked up front (test_bad_data.py), and every later batch as it streams
  into calibration or training, naming the batch (here).
- All-zero layers and constant tensors: every scale falls back to 1 where the range is zero, so zero stays
  zero and nothing is NaN (here, for each criterion x pattern and for each of our own quantizers; ORT's static
  int8 on an all-zero layer and constant data: test_bad_data.py).
- A model with nothing to prune: one clear line (here).
- A data set with a single class: accepted, and the metric is computed exactly as usual (accuracy is the
  share of samples predicted as that class); nothing is made up to fill the missing classes.
"""

from __future__ import annotations

import numpy as np
import onnx
import pydantic
import pytest
import torch
from onnx import TensorProto, helper
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import edgecompress as ec
from edgecompress.core.evaluate import score_torch
from edgecompress.core.models import DigitsCNN
from edgecompress.core.tasks.checks import check_task
from edgecompress.core.tasks.digits import ACCURACY
from edgecompress.techniques.prune.engine import prune_model
from edgecompress.techniques.quantize.block_qat import embedding_grid, matmul_nbits_grid
from edgecompress.techniques.quantize.channel_ranges import channel_absmax
from edgecompress.techniques.quantize.embedding_tables import _quantize_rows
from edgecompress.techniques.quantize.outlier_smoothing import _outlier_scales
from edgecompress.techniques.quantize.qat import quantize_to_grid


def _task(inputs, targets=None):
    targets = torch.arange(len(inputs)) % 10 if targets is None else targets
    loader = DataLoader(TensorDataset(inputs, targets), batch_size=8)
    return ec.Task("numerics", loader, loader, ACCURACY)


def _nan_in_third_batch():
    """NaN in batch 3 of the training data only (evaluation data with NaN: test_exit_codes.py)."""
    inputs = torch.rand(32, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    clean = _task(inputs.clone())
    inputs[17, 0, 3, 3] = float("nan")  # sample 17 is in batch 3 of 8; the first batch (checked up front) is clean
    return ec.Task("numerics", _task(inputs).train_loader, clean.eval_loader, ACCURACY)


@pytest.mark.parametrize(
    "stage, message",
    [
        (ec.Quantize(), "quantize.calibration_batches: batch 3 of the training data holds NaN or Inf inputs"),
        (ec.Prune(pattern="unstructured", criterion="wanda"), "prune.calibration_batches: batch 3 of the training data holds NaN or Inf"),
        (ec.Prune(pattern="unstructured", criterion="taylor"), "prune.calibration_batches: batch 3 of the training data holds NaN or Inf"),
        (ec.Finetune(epochs=1), r"stage 1/1 \(finetune\): batch 3 of the training data holds NaN or Inf inputs"),
    ],
)
def test_nan_in_a_later_batch_stops_the_stage_naming_the_batch(stage, message, tmp_path):
    with pytest.raises((ec.UserError, ec.RunFailure), match=message):
        ec.compress(DigitsCNN().eval(), _nan_in_third_batch(), [stage], tmp_path / "run")
    assert not (tmp_path / "run" / "final.onnx").exists()


def _with_zero_layers():
    model = DigitsCNN().eval()
    with torch.no_grad():
        model.conv2.weight.zero_()
        model.fc1.weight.zero_()
    return model


def _zero_layer_configs():
    """Every criterion x pattern the schema accepts (wanda x channel is refused by the config itself)."""
    configs = []
    for criterion in ("l1", "l2", "taylor", "wanda", "random"):
        for pattern in ("unstructured", "channel", "block", "nm"):
            layers = ("conv*", "fc*") if pattern in ("unstructured", "channel") else ("fc1",)  # block/nm: divisible shapes
            try:
                configs.append(ec.Prune(pattern=pattern, criterion=criterion, amount=0.5, layers=layers))
            except pydantic.ValidationError:
                continue
    return configs


ZERO_LAYER_CONFIGS = _zero_layer_configs()


def test_every_accepted_combination_is_covered():
    assert len(ZERO_LAYER_CONFIGS) == 19


@pytest.mark.parametrize("config", ZERO_LAYER_CONFIGS, ids=lambda c: f"{c.criterion}-{c.pattern}")
def test_all_zero_layers_prune_without_nan(config):
    model = _with_zero_layers()
    task = _task(torch.rand(32, 1, 8, 8, generator=torch.Generator().manual_seed(1)))
    prune_model(model, config, torch.zeros(1, 1, 8, 8), train=lambda *a, **k: None, batches=task.train_loader,
                loss_fn=task.loss_fn, seed=0)
    assert all(torch.isfinite(t).all() for t in model.state_dict().values() if t.is_floating_point())
    assert model.fc1.weight.abs().sum() == 0  # zeros stay zeros
    assert torch.isfinite(model(torch.rand(4, 1, 8, 8))).all()


def test_a_model_with_nothing_to_prune_is_one_clear_line(tmp_path):
    class ScaleOnly(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(10))

        def forward(self, x):
            return x.flatten(1)[:, :10] * self.scale

    task = _task(torch.rand(16, 1, 8, 8))
    with pytest.raises(ec.UserError, match="prune.layers: pattern '\\*' matches no Linear/Conv1d/Conv2d/Conv3d/GRU/LSTM/RNN layer; layers are: none"):
        ec.compress(ScaleOnly(), task, [ec.Prune(pattern="unstructured")], tmp_path / "run")
    only_classifier = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    with pytest.raises(ec.UserError, match="no layer left to prune after prune.keep and the kept classifier"):
        ec.compress(only_classifier, task, [ec.Prune(pattern="channel")], tmp_path / "run2")


def test_a_single_class_data_set_is_accepted_and_scored_as_usual():
    always = {}
    for label in (3, 0):
        model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
        with torch.no_grad():
            model[1].weight.zero_()
            model[1].bias.copy_(torch.nn.functional.one_hot(torch.tensor(label), 10).float())
        always[label] = model
    task = _task(torch.rand(24, 1, 8, 8), torch.full((24,), 3))
    check_task(always[3], task)  # no refusal
    assert score_torch(always[3], task) == 100.0
    assert score_torch(always[0], task) == 0.0


@pytest.mark.parametrize("value", [0.0, 0.37, -2.5])
def test_constant_tensors_quantize_without_dividing_by_zero(value):
    """Zero range (all equal, or all zero) in each quantizer we wrote: finite, and a constant is exact."""
    weight = torch.full((4, 64), value)
    for grid in (quantize_to_grid(weight, 4), quantize_to_grid(weight, "ternary"), matmul_nbits_grid(weight, 32),
                 embedding_grid(weight, 4, 32)):
        assert torch.isfinite(grid).all()
        assert torch.allclose(grid, weight, rtol=1e-6, atol=0)
    data, scales = _quantize_rows(np.full((8, 32), value, np.float32), 4, 16)
    assert np.isfinite(scales).all() and (scales > 0).all()
    restored = ((data & 0x0F).astype(np.float64) - 8) * scales.repeat(8, axis=1)  # low nibbles: even columns
    assert np.allclose(restored, value, rtol=1e-6, atol=0)
    scales, outliers = _outlier_scales("x", np.full(16, abs(value), np.float32), 4)
    assert np.array_equal(scales, np.ones(16)) and len(outliers) == 4


def test_constant_activations_give_finite_channel_ranges():
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["h"]), helper.make_node("Identity", ["h"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 6])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    feeds = [{"x": np.zeros((3, 6), np.float32)}, {"x": np.full((2, 6), -1.0, np.float32)}]
    ranges = channel_absmax(model, ["h"], feeds)
    assert np.array_equal(ranges["h"], np.zeros(6, np.float32))
    scales, _ = _outlier_scales("h", ranges["h"], 2)
    assert np.array_equal(scales, np.ones(6))
    onnx.checker.check_model(model)
