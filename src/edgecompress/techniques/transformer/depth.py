"""Remove whole transformer layers (depth pruning) from Llama/Qwen2-style decoders and BERT-style encoders.

ShortGPT (Men et al. 2024) and Minitron (Muralidharan et al. 2024) find many layers of a trained transformer
nearly redundant: their output hidden state points where their input did. Block Influence measures it on
calibration batches: BI = 1 - mean over real tokens of cos(input, output) of the layer; the layers with the
lowest BI are removed. Weight norms mean nothing here (a residual layer with large weights may still barely
turn the stream), so the alternative offered is `last`, dropping the final layers, as a baseline.

The layers are dropped from their ModuleList, the survivors keep their order, every `layer_idx` (what the
key/value cache indexes by) is renumbered, and the config says how many are left (`num_hidden_layers`, and
`layer_types` where a model has it, e.g. Qwen2), so the model runs, exports with a shorter cache and reloads.

>>> remove_layers(decoder.model, count=2, feeds=calibration_feeds)["removed_layers"]  # doctest: +SKIP
[5, 9]
"""

from __future__ import annotations

import torch
from torch import nn

from edgecompress.core.errors import UserError
from edgecompress.core.measure.params import count_params
from edgecompress.core.models.module_lists import keep_entries, original_positions
from edgecompress.techniques.transformer.slicing import Feeds, backbone, calibration_pass, model_name, removed_count, transformers_config


def layer_list(model: nn.Module) -> nn.ModuleList:
    """The ModuleList of a decoder's (`...model.layers`, each with self_attn and mlp) or a BERT-style encoder's
    (`encoder.layer`) transformer layers."""
    for module in model.modules():
        if isinstance(module, nn.ModuleList) and len(module) and all(hasattr(m, "self_attn") and hasattr(m, "mlp") for m in module):
            return module
    layers = getattr(getattr(backbone(model), "encoder", None), "layer", None)
    if isinstance(layers, nn.ModuleList) and len(layers):
        return layers
    raise UserError(f"remove_layers: needs a Llama/Qwen2-style decoder (model.layers[i] with self_attn and mlp) or a "
                    f"BERT-style encoder (encoder.layer[i]); {model_name(model)} has neither")


def remove_layers(model: nn.Module, count: int | None = None, fraction: float | None = None, feeds: Feeds | None = None,
                  criterion: str = "block_influence") -> dict:
    """Remove `count` layers (or `fraction` of them, rounded to the nearest layer) of `model`, in place: those
    with the lowest Block Influence on `feeds`, or the last ones (`criterion="last"`, no feeds needed)."""
    layers = layer_list(model)
    n = len(layers)
    drop = layers_removed(count, fraction, n)
    before = count_params(model)
    scores = None
    if criterion == "block_influence":
        if feeds is None:
            raise UserError("remove_layers.criterion: block_influence needs calibration batches; pass data, or use criterion last")
        scores = block_influence(model, layers, feeds)
        removed = sorted(torch.argsort(torch.tensor(scores), stable=True)[:drop].tolist())
    elif criterion == "last":
        removed = list(range(n - drop, n))
    else:
        raise UserError(f"remove_layers.criterion: must be block_influence or last, got {criterion!r}")
    kept = [i for i in range(n) if i not in removed]
    keep_layers(model, layers, kept)
    return {
        "removed": "layers",
        "criterion": "block influence" if scores is not None else "last",
        "removed_layers": removed,
        "block_influence": None if scores is None else [round(s, 6) for s in scores],
        "layers_before": n,
        "layers_after": len(kept),
        "params_before": before,
        "params_after": count_params(model),
    }


def block_influence(model: nn.Module, layers: nn.ModuleList, feeds: Feeds) -> list[float]:
    """Each layer's 1 - mean cosine between its input and output hidden states over the real tokens of `feeds`."""
    sums = torch.zeros(len(layers), dtype=torch.float64)
    tokens = torch.zeros(len(layers), dtype=torch.float64)
    batch: dict[str, torch.Tensor] = {}

    def record(i):
        def hook(module, args, kwargs, output):
            x = args[0] if args else kwargs["hidden_states"]
            y = output[0] if isinstance(output, (tuple, list)) else output
            real = batch["real"]
            cos = torch.nn.functional.cosine_similarity(x[real].float(), y[real].float(), dim=-1)
            sums[i] += cos.double().sum()
            tokens[i] += cos.numel()

        return hook

    handles = [layer.register_forward_hook(record(i), with_kwargs=True) for i, layer in enumerate(layers)]
    try:
        calibration_pass(model, feeds, batch, "remove_layers")
    finally:
        for handle in handles:
            handle.remove()
    return (1 - sums / tokens.clamp(min=1)).tolist()


def layers_removed(count: int | None, fraction: float | None, n: int) -> int:
    """How many of `n` layers `count` or `fraction` removes; a setting that removes none or all is refused."""
    if (count is None) == (fraction is None):
        raise UserError("remove_layers: give count (layers removed) or fraction (share of the layers removed), one of them")
    if count is not None:
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count < n:
            raise UserError(f"remove_layers.count: the model has {n} layers; remove from 1 to {n - 1} of them, got {count!r}")
        return count
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise UserError(f"remove_layers.fraction: must be a number in (0, 1) (the share of the layers removed), got {fraction!r}")
    drop = removed_count(fraction, n)
    if drop == 0:
        raise UserError(f"remove_layers.fraction: {fraction} of {n} layers removes none (rounded to the nearest layer); use at least {0.5 / n:.2f}")
    return drop


def keep_layers(model: nn.Module, layers: nn.ModuleList, kept: list[int]) -> None:
    """Drop the other layers, renumber what indexes by layer (`layer_idx`: the cache) and update the config."""
    config = transformers_config(model)
    layer_types = getattr(config, "layer_types", None)
    if isinstance(layer_types, (list, tuple)) and len(layer_types) == len(layers):
        config.layer_types = [layer_types[i] for i in kept]
    keep_entries(layers, kept)  # records the original positions, so a checkpoint reloads (core/models/module_lists)
    sync_layers(model)


def sync_layers(model: nn.Module) -> None:
    """Renumber each layer's `layer_idx` and set the config's layer count (and `layer_types`, if it still
    describes the original layers) from the layer list: after removal, and after a checkpoint with fewer
    layers was loaded into the original architecture (`after_resize`)."""
    try:
        layers = layer_list(model)
    except UserError:  # a model with no transformer layers (after_resize of a model that is not one)
        return
    for new, layer in enumerate(layers):
        for module in layer.modules():
            if isinstance(getattr(module, "layer_idx", None), int):
                module.layer_idx = new
    config = transformers_config(model)
    if config is None:
        return
    config.num_hidden_layers = len(layers)
    layer_types = getattr(config, "layer_types", None)
    kept = original_positions(layers)
    if isinstance(layer_types, (list, tuple)) and len(layer_types) != len(layers) and len(layer_types) > max(kept):
        config.layer_types = [layer_types[i] for i in kept]
