import contextlib
import io

import pytest
import torch
from torch import nn

import edgecompress as ec
from edgecompress.core.errors import UserError
from edgecompress.core.measure.params import count_params
from edgecompress.core.models import DigitsMLP
from edgecompress.techniques.lowrank.factorize import factorize_linears
from edgecompress.techniques.lowrank.svd import choose_rank, factorize_linear


def test_factorized_pair_is_the_truncated_svd():
    torch.manual_seed(0)
    layer = nn.Linear(32, 24)
    pair = factorize_linear(layer, rank=8)
    u, s, vh = torch.linalg.svd(layer.weight.detach(), full_matrices=False)
    best = u[:, :8] @ torch.diag(s[:8]) @ vh[:8]
    assert torch.allclose(pair[1].weight @ pair[0].weight, best, atol=1e-5)
    x = torch.rand(5, 32)
    assert torch.allclose(pair(x), x @ best.T + layer.bias, atol=1e-5)
    assert torch.allclose(factorize_linear(layer, rank=24)(x), layer(x), atol=1e-5)  # full rank is exact


def test_rank_by_budget_and_by_energy():
    weight = torch.diag(torch.tensor([10.0, 1.0, 0.1, 0.01]))
    assert choose_rank(weight, energy=0.98) == 1 and choose_rank(weight, energy=0.999) == 2
    assert choose_rank(torch.zeros(100, 300), keep=0.5) == int(0.5 * 100 * 300 / 400)


def test_layers_shrink_only_when_it_saves_parameters_and_the_classifier_stays():
    model = DigitsMLP()
    report = factorize_linears(model, keep=0.25)
    assert set(report) == {"fc1", "fc2"} and isinstance(model.fc3, nn.Linear)
    assert count_params(model) < 0.5 * count_params(DigitsMLP())
    assert factorize_linears(DigitsMLP(), keep=None, energy=0.9999999) == {}  # near-full rank saves nothing: left dense
    with pytest.raises(UserError, match="factorize.layers"):
        factorize_linears(DigitsMLP(), layers=("decoder*",))


def test_factorize_stage_recovers_with_finetuning_and_exports(trained_mlp, digits, tmp_path):
    with contextlib.redirect_stderr(io.StringIO()):
        result = ec.compress(trained_mlp, digits, [ec.Factorize(keep=0.25), ec.Finetune(epochs=4, distill=0.5)], tmp_path / "f")
    factorized = result.stages[0]
    assert factorized.details["factorization"]["fc1"]["full_rank"] == 64
    assert result.final.params < 0.3 * result.baseline.params
    assert result.final.artifact_bytes < 0.3 * result.baseline.artifact_bytes
    assert result.final.score >= result.baseline.score - 1.5


def test_factorize_stage_with_convs_splits_the_convolutions_too(tmp_path):
    import json

    from edgecompress.core.models import DigitsCNN
    from edgecompress.core.tasks.digits import digits_task
    from edgecompress.orchestration.pipeline.run import compress
    from edgecompress.orchestration.pipeline.stages import Factorize

    result = compress(DigitsCNN(), digits_task(0), [Factorize(keep=0.5, convs=True)], tmp_path / "out")
    stage = json.loads((tmp_path / "out" / "metrics.json").read_text())["stages"][0]
    assert set(stage["factorization"]) == {"conv1", "conv2", "fc1"}
    chosen_before = result.baseline.params - (128 * 10 + 10)  # the classifier stays dense
    chosen_after = result.final.params - (128 * 10 + 10)
    assert abs(chosen_after / chosen_before - 0.5) < 0.01
