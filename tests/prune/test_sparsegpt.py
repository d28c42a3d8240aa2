"""SparseGPT: one-shot pruning with OBS weight updates beats magnitude pruning at the same sparsity."""

from __future__ import annotations

import pytest
import torch

import edgecompress as ec
from edgecompress.core.masks import get_mask
from edgecompress.orchestration.recipe.load import parse_recipe
from edgecompress.techniques.prune.sparsegpt import SparseGPT, layer_hessians, sparsegpt_prune


def _magnitude_keep(weight, pattern):
    if isinstance(pattern, ec.NM):
        groups = weight.abs().reshape(weight.shape[0], -1, pattern.m)
        top = groups.topk(pattern.n, dim=2).indices
        return torch.zeros_like(groups, dtype=torch.bool).scatter_(2, top, True).reshape(weight.shape)
    return weight.abs() > weight.abs().flatten().kthvalue(weight.numel() // 2).values


@pytest.mark.parametrize("pattern", [ec.Unstructured(), ec.NM(2, 4)], ids=["unstructured-50%", "2:4"])
def test_a_layer_is_reconstructed_with_a_third_less_error_than_magnitude_pruning(pattern):
    torch.manual_seed(0)
    inputs = torch.randn(2048, 64) @ (torch.eye(64) + 2 * torch.randn(64, 64) / 8)  # correlated features, as in real layers
    weight = torch.randn(32, 64)
    hessian = 2 * inputs.double().T @ inputs.double() / len(inputs)
    pruned, keep = sparsegpt_prune(weight, hessian, pattern, amount=0.5, block_size=16)

    def error(w):
        return ((inputs @ weight.T - inputs @ w.T) ** 2).mean().item()

    assert (pruned == 0).float().mean().item() == 0.5 and torch.equal(pruned == 0, ~keep)
    if isinstance(pattern, ec.NM):
        assert torch.equal((pruned.reshape(32, -1, 4) != 0).sum(2), torch.full((32, 16), 2))
    assert error(pruned) < 0.75 * error(weight * _magnitude_keep(weight, pattern))  # measured: 0.68x and 0.63x


def test_the_hessian_is_twice_the_mean_input_outer_product(trained_mlp, digits):
    batches = [batch for _, batch in zip(range(3), digits.train_loader)]
    hessians = layer_hessians(trained_mlp, {"fc1": trained_mlp.fc1}, batches, max_batches=2)
    x = torch.cat([inputs for inputs, _ in batches[:2]]).reshape(-1, 64).double()
    assert torch.allclose(hessians["fc1"], 2 * x.T @ x / len(x))


def test_apply_on_a_trained_model_keeps_outputs_closer_than_magnitude_and_masks_hold(trained_mlp, digits):
    config = SparseGPT(pattern=ec.NM(2, 4), layers=("fc1", "fc2"))
    pruned = ec.apply(trained_mlp, config, digits)
    magnitude = ec.apply(trained_mlp, ec.Prune(pattern=ec.NM(2, 4), criterion=ec.Magnitude(), layers=("fc1", "fc2")))
    x, _ = next(iter(digits.eval_loader))
    with torch.no_grad():
        dense = trained_mlp(x)
        assert ((pruned(x) - dense) ** 2).mean() < ((magnitude(x) - dense) ** 2).mean()
    for name in ("fc1", "fc2"):
        weight = getattr(pruned, name).weight.detach()
        assert torch.equal((weight.reshape(weight.shape[0], -1, 4) != 0).sum(2) <= 2, torch.ones(weight.shape[0], weight.shape[1] // 4, dtype=torch.bool))
        assert get_mask(getattr(pruned, name)) is not None


def test_sparsegpt_is_a_recipe_stage_and_refuses_what_makes_no_sense():
    recipe = parse_recipe({"model": "digits-mlp", "stages": [{"stage": "sparsegpt", "pattern": {"kind": "nm", "n": 2, "m": 4}}]})
    assert recipe.stages == [SparseGPT(pattern=ec.NM(2, 4))]
    with pytest.raises(ValueError, match="amount is fixed at 1 - n/m = 0.5"):
        SparseGPT(pattern=ec.NM(2, 4), amount=0.7)
    with pytest.raises(ValueError, match="pattern"):
        SparseGPT(pattern=ec.Blocks(8, 8))
