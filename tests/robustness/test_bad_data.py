"""Bad models and data are refused before anything is written, with a line that says what to fix."""

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import edgecompress as ec
from edgecompress.core.models import DigitsCNN
from edgecompress.core.tasks.digits import ACCURACY


def _task(train_x, eval_x=None, train_y=None):
    eval_x = train_x if eval_x is None else eval_x
    train_y = torch.zeros(len(train_x), dtype=torch.long) if train_y is None else train_y
    return ec.Task(
        "bad",
        DataLoader(TensorDataset(train_x, train_y), batch_size=8),
        DataLoader(TensorDataset(eval_x, torch.zeros(len(eval_x), dtype=torch.long)), batch_size=8),
        ACCURACY,
    )


@pytest.mark.parametrize(
    "make_model, task, message",
    [
        (DigitsCNN, _task(torch.rand(0, 1, 8, 8)), "the train loader is empty"),
        (DigitsCNN, _task(torch.rand(16, 3, 8, 8)), "samples of shape 3x8x8 do not fit DigitsCNN"),
        (DigitsCNN, _task(torch.randint(0, 16, (16, 1, 8, 8))), "inputs must be a float tensor"),
        (DigitsCNN, _task(torch.full((16, 1, 8, 8), float("nan"))), "NaN or Inf inputs"),
        (DigitsCNN, _task(torch.rand(16, 1, 8, 8), torch.rand(16, 1, 9, 9)), "sample shapes differ"),
    ],
)
def test_bad_data_is_refused_before_any_output(make_model, task, message, tmp_path):
    with pytest.raises(ec.UserError, match=message):
        ec.compress(make_model(), task, [ec.Quantize()], tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_nan_weights_are_refused(tmp_path):
    model = DigitsCNN()
    with torch.no_grad():
        model.fc1.weight[0, 0] = float("inf")
    with pytest.raises(ec.UserError, match="'fc1.weight' holds NaN or Inf"):
        ec.compress(model, _task(torch.rand(16, 1, 8, 8)), [ec.Quantize()], tmp_path / "run")


def test_all_zero_layer_and_constant_calibration_data_quantize_cleanly(tmp_path):
    """Zero ranges (an all-zero layer, constant inputs) must not divide by zero anywhere."""
    model = DigitsCNN().eval()
    with torch.no_grad():
        model.conv2.weight.zero_()
    task = _task(torch.ones(16, 1, 8, 8))
    result = ec.compress(model, task, [ec.Quantize(tolerance=1.0)], tmp_path / "run")
    assert result.final.score == result.baseline.score
