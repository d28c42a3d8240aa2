"""The handlers for removing FFN neurons and attention heads (configs: `config.py`; `structured.py` slices)."""

from __future__ import annotations

import copy
from itertools import islice

from edgecompress.core.tasks.checks import FiniteBatches
from edgecompress.techniques.stage import ModelState, StageContext
from edgecompress.techniques.transformer.config import Removal, RemoveFfn, RemoveHeads
from edgecompress.techniques.transformer.structured import remove_attention_heads, remove_ffn_neurons


def remove_ffn_stage(config: RemoveFfn, state: ModelState, ctx: StageContext) -> ModelState:
    model = copy.deepcopy(state.torch_model)
    report = remove_ffn_neurons(model, config.fraction, _calibration(config, ctx), refit=config.refit)
    return ModelState(model, details={"remove_ffn": report})


def remove_heads_stage(config: RemoveHeads, state: ModelState, ctx: StageContext) -> ModelState:
    model = copy.deepcopy(state.torch_model)
    report = remove_attention_heads(model, config.fraction, _calibration(config, ctx), refit=config.refit)
    return ModelState(model, details={"remove_heads": report})


def _calibration(config: Removal, ctx: StageContext) -> list | None:
    if config.criterion == "magnitude":
        return None
    task = ctx.require_task(config.stage)
    return [batch[0] for batch in islice(FiniteBatches(task.train_loader, f"{config.stage}.calibration_batches"), config.calibration_batches)]
