"""Stage configs and handlers for removing FFN neurons and attention heads (`structured.py` does the slicing)."""

from __future__ import annotations

import copy
from itertools import islice
from typing import Literal

from pydantic import Field

from edgecompress.core.tasks.checks import FiniteBatches
from edgecompress.techniques.stage import ModelState, StageConfig, StageContext
from edgecompress.techniques.transformer.structured import remove_attention_heads, remove_ffn_neurons


class _Removal(StageConfig):
    stage: str  # each subclass names its own
    fraction: float = Field(0.5, gt=0.0, lt=1.0, description="share removed in every layer")
    criterion: Literal["wanda", "magnitude"] = Field("wanda", description="activation-aware on calibration batches, or weight norms")
    calibration_batches: int = Field(32, ge=1, le=100_000, description="training batches read by wanda and the refit")
    refit: bool = Field(True, description="wanda only: refit the output projection by least squares on the kept inputs")


class RemoveFfn(_Removal):
    """Remove `fraction` of the FFN neurons of every transformer layer: rows of the up projection and columns of
    the down projection, so the matrices really shrink. Ranked by activation (Wanda) and refitted by default.

    >>> RemoveFfn(fraction=0.5).criterion
    'wanda'
    """

    stage: Literal["remove_ffn"] = "remove_ffn"


class RemoveHeads(_Removal):
    """Remove `fraction` of the attention heads of every transformer layer (their query, key and value rows and
    output-projection columns).

    >>> RemoveHeads(fraction=0.25).stage
    'remove_heads'
    """

    stage: Literal["remove_heads"] = "remove_heads"
    fraction: float = Field(0.25, gt=0.0, lt=1.0, description="share of heads removed in every layer")


def remove_ffn_stage(config: RemoveFfn, state: ModelState, ctx: StageContext) -> ModelState:
    model = copy.deepcopy(state.torch_model)
    report = remove_ffn_neurons(model, config.fraction, _calibration(config, ctx), refit=config.refit)
    return ModelState(model, details={"remove_ffn": report})


def remove_heads_stage(config: RemoveHeads, state: ModelState, ctx: StageContext) -> ModelState:
    model = copy.deepcopy(state.torch_model)
    report = remove_attention_heads(model, config.fraction, _calibration(config, ctx), refit=config.refit)
    return ModelState(model, details={"remove_heads": report})


def _calibration(config: _Removal, ctx: StageContext) -> list | None:
    if config.criterion == "magnitude":
        return None
    task = ctx.require_task(config.stage)
    return [batch[0] for batch in islice(FiniteBatches(task.train_loader, f"{config.stage}.calibration_batches"), config.calibration_batches)]
