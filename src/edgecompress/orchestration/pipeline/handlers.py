"""The registry: stage config type -> handler. A technique is a config and a handler; registering it is one line.

A handler is `fn(config, state, ctx) -> ModelState` (`techniques/stage.py`). The recipe schema and `apply`
take their stage types from this table, so a registered config is also a recipe stage (its `stage:` name, and
for several configs under one name, e.g. quantize, their `mode:`).
"""

from __future__ import annotations

from typing import Annotated, Union

from pydantic import Discriminator, Field, Tag

from edgecompress.techniques.distill import Distill, distill_stage
from edgecompress.techniques.finetune import Finetune, finetune_stage
from edgecompress.techniques.lowrank.stage import Factorize, factorize_stage
from edgecompress.techniques.prune.config import Prune
from edgecompress.techniques.prune.sparsegpt import SparseGPT, sparsegpt_stage
from edgecompress.techniques.prune.stage import prune_stage
from edgecompress.techniques.quantize.config import BlockQat, CastFp16, Qat, QuantizeDynamic, QuantizeInt4, QuantizeStatic
from edgecompress.techniques.quantize.stage import (
    block_qat_stage,
    cast_fp16_stage,
    qat_stage,
    quantize_dynamic_stage,
    quantize_int4_stage,
    quantize_static_stage,
)
from edgecompress.techniques.stage import Handler, ModelState, StageConfig, StageContext
from edgecompress.techniques.transformer import RemoveFfn, RemoveHeads, remove_ffn_stage, remove_heads_stage

HANDLERS: dict[type[StageConfig], Handler] = {
    Prune: prune_stage,
    Finetune: finetune_stage,
    Factorize: factorize_stage,
    Qat: qat_stage,
    QuantizeStatic: quantize_static_stage,
    QuantizeDynamic: quantize_dynamic_stage,
    CastFp16: cast_fp16_stage,
    QuantizeInt4: quantize_int4_stage,
    SparseGPT: sparsegpt_stage,
    Distill: distill_stage,
    BlockQat: block_qat_stage,
    RemoveFfn: remove_ffn_stage,
    RemoveHeads: remove_heads_stage,
}

__all__ = ["HANDLERS", "ModelState", "StageContext", "run_stage", "stage_union"]


def run_stage(config: StageConfig, state: ModelState, ctx: StageContext) -> ModelState:
    """Apply one stage config to the model in `state` with its registered handler."""
    return HANDLERS[type(config)](config, state, ctx)


def stage_union():
    """The type of one recipe stage: the registered configs, told apart by `stage`, then by `mode`."""
    by_stage: dict[str, list[type[StageConfig]]] = {}
    for config in HANDLERS:
        by_stage.setdefault(config.model_fields["stage"].default, []).append(config)
    members = []
    for name, configs in by_stage.items():
        if len(configs) == 1:
            members.append(configs[0])
            continue
        default = configs[0].model_fields["mode"].default
        modes = [config.model_fields["mode"].default for config in configs]
        members.append(Annotated[
            Union[tuple(Annotated[config, Tag(mode)] for config, mode in zip(configs, modes))],
            Discriminator(
                lambda value, default=default: value.get("mode", default) if isinstance(value, dict) else getattr(value, "mode", None),
                custom_error_type="unknown_mode",
                custom_error_message=f"mode: must be one of {', '.join(modes)}",
            ),
        ])
    return Annotated[Union[tuple(members)], Field(discriminator="stage")]
