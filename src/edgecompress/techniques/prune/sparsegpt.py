"""SparseGPT (Frantar & Alistarh 2023): prune Linear layers in one shot and update the kept weights to make up.

For each layer, the inverse Hessian of the layer's reconstruction error, H = 2 X^T X over calibration inputs,
tells how much every weight matters given the others (Optimal Brain Surgeon). Columns are processed left to
right in blocks: within a block, the weights with the lowest w^2 / [H^-1]_jj^2 are removed (the `amount` of the
block, or the `m - n` weakest of every `m` for N:M), and the error each removal makes is pushed onto the
columns not yet processed, along the row of the Cholesky factor of H^-1. The result is a sparse layer whose
outputs on the calibration data are closer to the dense layer's than magnitude pruning's at the same sparsity.

Hessians come from the dense model's inputs in one calibration pass (the paper prunes layer by layer on the
pruned model's inputs); the removed weights are kept as masks, so later fine-tuning keeps them at zero.

>>> pruned = ec.apply(model, SparseGPT(pattern=NM(2, 4), layers=("fc1",)), train_loader)  # doctest: +SKIP
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils import parametrize

from edgecompress.core.errors import UserError
from edgecompress.core.masks import set_mask
from edgecompress.core.tasks.checks import FiniteBatches
from edgecompress.techniques.prune.calibration import run_calibration
from edgecompress.techniques.prune.config import SparseGPT
from edgecompress.techniques.prune.patterns import NM, Unstructured
from edgecompress.techniques.prune.selection import select_layers
from edgecompress.techniques.stage import ModelState, StageContext


def sparsegpt_stage(config: SparseGPT, state: ModelState, ctx: StageContext) -> ModelState:
    task = ctx.require_task("sparsegpt")
    model = copy.deepcopy(state.torch_model)
    layers = select_layers(model, config.layers, ("Linear",), config.keep, config.keep_classifier)
    if isinstance(config.pattern, NM):
        for name, layer in layers.items():
            if layer.in_features % config.pattern.m:
                raise UserError(f"sparsegpt.pattern: groups of {config.pattern.m} (N:M) do not divide layer {name}'s {layer.in_features} input columns")
    hessians = layer_hessians(model, layers, FiniteBatches(task.train_loader, "sparsegpt.calibration_batches"), config.calibration_batches)
    for name, layer in layers.items():
        weight = _dense_weight(layer)
        pruned, keep = sparsegpt_prune(weight, hessians[name], config.pattern, config.amount, config.block_size, config.damp)
        with torch.no_grad():
            weight.copy_(pruned)
        set_mask(layer, keep)
    return ModelState(model)


def layer_hessians(model: nn.Module, layers: dict[str, nn.Linear], batches, max_batches: int) -> dict[str, torch.Tensor]:
    """H = 2 X^T X / samples for each layer's inputs X over the calibration batches (float64)."""
    sums = {name: torch.zeros(layer.in_features, layer.in_features, dtype=torch.float64) for name, layer in layers.items()}
    counts = dict.fromkeys(layers, 0)

    def hook(name):
        def record(module, args):
            x = args[0].detach().reshape(-1, module.in_features).double()
            sums[name] += x.T @ x
            counts[name] += x.shape[0]

        return record

    handles = [layer.register_forward_pre_hook(hook(name)) for name, layer in layers.items()]
    was_training = model.training
    model.eval()
    try:
        run_calibration(model, batches, max_batches)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    missing = [name for name, count in counts.items() if count == 0]
    if missing:
        raise UserError(f"sparsegpt.calibration_batches: layer {missing[0]} never ran on the calibration data; check the batches reach it")
    return {name: 2 * sums[name] / counts[name] for name in layers}


def sparsegpt_prune(
    weight: torch.Tensor, hessian: torch.Tensor, pattern: Unstructured | NM, amount: float = 0.5, block_size: int = 128, damp: float = 0.01
) -> tuple[torch.Tensor, torch.Tensor]:
    """The pruned weight (kept weights updated) and its keep-mask, for a (out, in) weight and its (in, in) Hessian."""
    W = weight.detach().double().clone()
    H = hessian.double().clone()
    columns = W.shape[1]
    dead = torch.diag(H) == 0  # inputs that were always zero: their weights do nothing
    H[dead, dead] = 1
    W[:, dead] = 0
    H += damp * torch.mean(torch.diag(H)) * torch.eye(columns, dtype=H.dtype)
    Hinv = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(H)), upper=True)
    removed = torch.zeros_like(W, dtype=torch.bool)
    for i1 in range(0, columns, block_size):
        i2 = min(i1 + block_size, columns)
        W1, Hinv1 = W[:, i1:i2].clone(), Hinv[i1:i2, i1:i2]
        Q1, Err1 = torch.zeros_like(W1), torch.zeros_like(W1)
        saliency = W1**2 / torch.diag(Hinv1).reshape(1, -1) ** 2
        mask1 = torch.zeros_like(W1, dtype=torch.bool)
        if isinstance(pattern, Unstructured):
            remove = int(round(amount * saliency.numel()))
            mask1.view(-1)[saliency.flatten().argsort(stable=True)[:remove]] = True
        for i in range(i2 - i1):
            if isinstance(pattern, NM) and i % pattern.m == 0:
                group = W1[:, i : i + pattern.m] ** 2 / torch.diag(Hinv1)[i : i + pattern.m].reshape(1, -1) ** 2
                weakest = torch.topk(group, pattern.m - pattern.n, dim=1, largest=False).indices
                mask1.scatter_(1, i + weakest, True)
            w, d = W1[:, i], Hinv1[i, i]
            q = w.clone()
            q[mask1[:, i]] = 0
            Q1[:, i] = q
            err = (w - q) / d
            W1[:, i:] -= err.unsqueeze(1) @ Hinv1[i, i:].unsqueeze(0)
            Err1[:, i] = err
        W[:, i1:i2] = Q1
        removed[:, i1:i2] = mask1
        W[:, i2:] -= Err1 @ Hinv[i1:i2, i2:]
    return W.to(weight.dtype), ~removed


def _dense_weight(layer: nn.Linear) -> torch.Tensor:
    """The stored weight, under any mask an earlier stage put on it (zeros there stay zero through `set_mask`)."""
    if parametrize.is_parametrized(layer, "weight"):
        return layer.parametrizations.weight.original
    return layer.weight
