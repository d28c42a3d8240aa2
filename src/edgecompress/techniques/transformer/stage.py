"""The handlers for removing FFN neurons, attention heads and whole layers (configs: `config.py`; `structured.py`,
`decoder_heads.py` and `depth.py` remove)."""

from __future__ import annotations

import copy
from itertools import islice

from edgecompress.core.tasks.checks import FiniteBatches
from edgecompress.techniques.stage import ModelState, StageContext
from edgecompress.techniques.transformer.config import Removal, RemoveFfn, RemoveHeads, RemoveLayers
from edgecompress.techniques.transformer.decoder_heads import refuse_cache_change
from edgecompress.techniques.transformer.depth import remove_layers
from edgecompress.techniques.transformer.structured import remove_attention_heads, remove_ffn_neurons


def remove_ffn_stage(config: RemoveFfn, state: ModelState, ctx: StageContext) -> ModelState:
    model = copy.deepcopy(state.torch_model)
    report = remove_ffn_neurons(model, config.fraction, _calibration(config, ctx), refit=config.refit)
    return ModelState(model, details={"remove_ffn": report})


def remove_heads_stage(config: RemoveHeads, state: ModelState, ctx: StageContext) -> ModelState:
    if ctx.task is not None:
        refuse_cache_change(state.torch_model)
    model = copy.deepcopy(state.torch_model)
    report = remove_attention_heads(model, config.fraction, _calibration(config, ctx), refit=config.refit)
    return ModelState(model, details={"remove_heads": report})


def remove_layers_stage(config: RemoveLayers, state: ModelState, ctx: StageContext) -> ModelState:
    model = copy.deepcopy(state.torch_model)
    feeds = _calibration(config, ctx) if config.criterion == "block_influence" else None
    report = remove_layers(model, config.count, config.fraction, feeds, config.criterion)
    return ModelState(model, details={"remove_layers": report})


def _calibration(config: Removal | RemoveLayers, ctx: StageContext) -> list | None:
    if getattr(config, "criterion", None) == "magnitude":
        return None
    task = ctx.require_task(config.stage)
    return [batch[0] for batch in islice(FiniteBatches(task.train_loader, f"{config.stage}.calibration_batches"), config.calibration_batches)]
