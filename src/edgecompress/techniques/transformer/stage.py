"""The handlers for removing FFN neurons and attention heads (configs: `config.py`; `structured.py` and
`decoder_heads.py` remove)."""

from __future__ import annotations

import copy
from itertools import islice

from edgecompress.core.errors import UserError
from edgecompress.core.tasks.checks import FiniteBatches
from edgecompress.techniques.stage import ModelState, StageContext
from edgecompress.techniques.transformer.config import Removal, RemoveFfn, RemoveHeads
from edgecompress.techniques.transformer.decoder_heads import decoder_attention
from edgecompress.techniques.transformer.structured import remove_attention_heads, remove_ffn_neurons


def remove_ffn_stage(config: RemoveFfn, state: ModelState, ctx: StageContext) -> ModelState:
    model = copy.deepcopy(state.torch_model)
    report = remove_ffn_neurons(model, config.fraction, _calibration(config, ctx), refit=config.refit)
    return ModelState(model, details={"remove_ffn": report})


def remove_heads_stage(config: RemoveHeads, state: ModelState, ctx: StageContext) -> ModelState:
    _refuse_cache_change(state.torch_model, ctx)
    model = copy.deepcopy(state.torch_model)
    report = remove_attention_heads(model, config.fraction, _calibration(config, ctx), refit=config.refit)
    return ModelState(model, details={"remove_heads": report})


def _refuse_cache_change(model, ctx: StageContext) -> None:
    """A decoder with one query head per key/value head loses key/value heads, so its cache changes shape;
    a run's token batches carry the original's (empty) cache, so such a run is refused before any work."""
    attention = decoder_attention(model)
    if ctx.task is not None and attention and attention[0].k_proj.out_features == attention[0].q_proj.out_features:
        raise UserError("remove_heads: this decoder has one query head per key/value head, so removing heads changes its "
                        "key/value cache, which a language-model run cannot feed yet; use remove_ffn or remove_layers")


def _calibration(config: Removal, ctx: StageContext) -> list | None:
    if config.criterion == "magnitude":
        return None
    task = ctx.require_task(config.stage)
    return [batch[0] for batch in islice(FiniteBatches(task.train_loader, f"{config.stage}.calibration_batches"), config.calibration_batches)]
