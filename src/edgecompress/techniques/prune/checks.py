"""The prune stage's checks against a model, with nothing computed: what `run` and `validate` refuse before any
output is written (a layer pattern that matches nothing, a block that does not divide a weight, ...).

They need the model's layers, so torch; not Torch-Pruning, which only the pruning itself (`channel.py`) uses.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

import torch
from torch import nn

from edgecompress.core.errors import UserError
from edgecompress.core.models.loading import load_state_dict
from edgecompress.techniques.prune.config import Prune
from edgecompress.techniques.prune.criteria import OwnMasks
from edgecompress.techniques.prune.recurrent import RecurrentWeight, check_recurrent_criterion
from edgecompress.techniques.prune.selection import select_layers


def check_prune(model: nn.Module, config: Prune, has_data: bool) -> dict[str, nn.Module]:
    """Every check of `config` against `model` that needs no work: run it before writing anything.

    Returns the selected layers. Raises a
    one-line UserError for a layer pattern that matches nothing, a block shape or N:M group that does not
    divide a weight, a criterion that needs data when there is none, or an own-masks file that does not fit.

    >>> check_prune(DigitsCNN(), Prune(pattern=Blocks(8, 8)), has_data=True)  # doctest: +SKIP
    UserError: prune.pattern: 8x8 blocks do not divide layer conv1's 32x9 weight matrix; ...
    """
    layers = select_layers(model, config.layers, config.types, config.keep, config.keep_classifier, config.pattern.removes_channels)
    recurrent = [name for name, layer in layers.items() if isinstance(layer, RecurrentWeight)]
    check_recurrent_criterion(config.criterion.kind, recurrent)
    if recurrent and config.pattern.removes_channels and config.criterion.kind not in ("magnitude", "random"):
        raise UserError(
            f"prune.criterion: {config.criterion.kind} does not score the hidden units of recurrent layers ({recurrent[0]}); "
            "use magnitude or random"
        )
    unknown = [p for p in config.per_layer if not any(fnmatch.fnmatch(n, p) for n in layers)]
    if unknown:
        raise UserError(f"prune.per_layer: pattern {unknown[0]!r} matches no selected layer; layers are: {', '.join(layers)}")
    if isinstance(config.criterion, OwnMasks):
        user_masks(layers, Path(config.criterion.file))  # a small file: reading it twice is cheaper than a late failure
        return layers
    if config.criterion.needs_data and not has_data:
        raise UserError(f"prune.criterion: {config.criterion.kind} needs data; the task has no training loader")
    if config.schedule != "oneshot" and not has_data:
        raise UserError(f"prune.schedule: {config.schedule} trains between steps and needs data; the task has no training loader")
    for name, module in layers.items():
        config.pattern.check(name, module.weight)
    return layers


def check_prune_stages(model: nn.Module, stages, has_data: bool) -> None:
    """`check_prune` for the prune stages of a recipe, before any output is written; all problems in one line.

    Layer shapes are those of `model`, so checking stops at the first stage that may change them (channel
    removal, or any stage other than a masking prune or a fine-tune): later stages are checked when they run.

    >>> check_prune_stages(DigitsCNN(), [Prune(pattern=Unstructured(), layers=("decoder.*",))], True)  # doctest: +SKIP
    UserError: recipe: stage 1 (prune): prune.layers: pattern 'decoder.*' matches no Linear/Conv1d/... layer; ...
    """
    problems = []
    for index, stage in enumerate(stages, start=1):
        if isinstance(stage, Prune):
            try:
                check_prune(model, stage, has_data)
            except UserError as exc:
                problems.append(f"stage {index} (prune): {exc}")
        keeps_shapes = (isinstance(stage, Prune) and not stage.pattern.removes_channels) or getattr(stage, "stage", None) == "finetune"
        if not keeps_shapes:
            break
    if problems:
        raise UserError("recipe: " + "; ".join(problems))


def user_masks(layers: dict[str, nn.Module], path: Path) -> dict[str, torch.Tensor]:
    """The masks of a user's safetensors file, checked against the selected layers."""
    masks = load_state_dict(path, field="prune.masks")
    unknown = sorted(set(masks) - set(layers))
    if unknown:
        raise UserError(f"prune.masks: {path} has a mask for {unknown[0]!r}, which is not a selected layer ({', '.join(layers)})")
    for name, mask in masks.items():
        weight = layers[name].weight
        if mask.shape != weight.shape:
            raise UserError(f"prune.masks: mask {name!r} has shape {tuple(mask.shape)}, the weight {tuple(weight.shape)}")
    return masks
