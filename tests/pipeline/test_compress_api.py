"""The Python API on a user's own model, data loaders and metric."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import edgecompress as ec
from edgecompress.core.tasks.digits import digits_split


def _users_setup():
    torch.manual_seed(0)
    x_train, y_train, x_test, y_test = digits_split()
    flat = lambda x: x.reshape(len(x), 64)  # noqa: E731  the user's model takes flat vectors
    train = DataLoader(TensorDataset(flat(x_train), y_train), batch_size=32, shuffle=True)
    test = DataLoader(TensorDataset(flat(x_test), y_test), batch_size=100)
    model = nn.Sequential(nn.Linear(64, 96), nn.ReLU(), nn.Linear(96, 48), nn.ReLU(), nn.Linear(48, 10))
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    for _ in range(8):
        for x, y in train:
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    errors = ec.Metric("error_rate", lambda out, y: (out.argmax(1) != y).float().mean().item(), higher_is_better=False)
    return model.eval(), ec.Task("users-digits", train, test, errors)


@pytest.mark.parametrize("quantize", [ec.Quantize(calibration_batches=4), ec.Quantize(mode="dynamic")], ids=["static", "dynamic"])
def test_compress_users_model_with_own_metric(tmp_path, quantize):
    model, task = _users_setup()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    recipe = [ec.Prune(amount=0.5), ec.Finetune(epochs=3, lr=1e-3), quantize]
    result = ec.compress(model, task, recipe, tmp_path / "run")

    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items()), "the input model must not change"
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["metric"] == {"name": "error_rate", "higher_is_better": False, "unit": ""}
    assert metrics["final"]["artifact"] == "final.onnx"
    # hidden layers halved: 64*48 + 48*24 + 24*10 weights + biases
    assert metrics["final"]["params"] == 64 * 48 + 48 + 48 * 24 + 24 + 24 * 10 + 10
    assert result.final.score < 0.10  # error rate of the user's metric, measured on the int8 ONNX file
    assert result.final.artifact_bytes < result.baseline.artifact_bytes / 3


def test_stage_order_is_validated_before_any_work(tmp_path):
    model, task = _users_setup()
    with pytest.raises(ec.UserError, match=r"stage 2 \(finetune\): cannot follow stage 1 \(quantize\)"):
        ec.compress(model, task, [ec.Quantize(), ec.Finetune()], tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_stage_configs_validate_their_fields():
    with pytest.raises(ValueError, match="amount"):
        ec.Prune(amount=1.5)
    with pytest.raises(ValueError, match="epochs"):
        ec.Finetune(epochs=0)
    with pytest.raises(ValueError, match="extra"):
        ec.Quantize(bits=3)
    with pytest.raises(ValueError, match="applies to mode static only"):
        ec.Quantize(mode="dynamic", calibration="entropy")
