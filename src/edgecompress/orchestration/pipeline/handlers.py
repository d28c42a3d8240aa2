"""The registry: stage config type -> handler. A technique is a config and a handler; registering it is one line.

A handler is `fn(config, state, ctx) -> ModelState` (`techniques/stage.py`), named here as "module:function"
and imported when a stage of its type first runs: the configs import no torch, so the recipe schema (built
from this table: each config's `stage:` name, and for several configs under one name, e.g. quantize, their
`mode:`) loads for `validate` and `--help` without the heavy stack that the handlers need.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Annotated, Union

from pydantic import Discriminator, Field, Tag

from edgecompress.core.lazy import imported
from edgecompress.techniques.config import StageConfig
from edgecompress.techniques.distill.config import Distill
from edgecompress.techniques.finetune.config import Finetune
from edgecompress.techniques.lowrank.config import Factorize
from edgecompress.techniques.prune.config import Prune, SparseGPT
from edgecompress.techniques.quantize.config import BlockQat, CastFp16, Qat, QuantizeDynamic, QuantizeInt4, QuantizeStatic
from edgecompress.techniques.transformer.config import RemoveFfn, RemoveHeads, RemoveLayers

if TYPE_CHECKING:
    from edgecompress.techniques.stage import Handler, ModelState, StageContext

HANDLERS: dict[type[StageConfig], str] = {
    Prune: "edgecompress.techniques.prune.stage:prune_stage",
    Finetune: "edgecompress.techniques.finetune.stage:finetune_stage",
    Factorize: "edgecompress.techniques.lowrank.stage:factorize_stage",
    Qat: "edgecompress.techniques.quantize.stage:qat_stage",
    QuantizeStatic: "edgecompress.techniques.quantize.stage:quantize_static_stage",
    QuantizeDynamic: "edgecompress.techniques.quantize.stage:quantize_dynamic_stage",
    CastFp16: "edgecompress.techniques.quantize.stage:cast_fp16_stage",
    QuantizeInt4: "edgecompress.techniques.quantize.stage:quantize_int4_stage",
    SparseGPT: "edgecompress.techniques.prune.sparsegpt:sparsegpt_stage",
    Distill: "edgecompress.techniques.distill.stage:distill_stage",
    BlockQat: "edgecompress.techniques.quantize.stage:block_qat_stage",
    RemoveFfn: "edgecompress.techniques.transformer.stage:remove_ffn_stage",
    RemoveHeads: "edgecompress.techniques.transformer.stage:remove_heads_stage",
    RemoveLayers: "edgecompress.techniques.transformer.stage:remove_layers_stage",
}

__all__ = ["HANDLERS", "handler_for", "run_stage", "stage_union"]


@functools.cache
def handler_for(config_type: type[StageConfig]) -> Handler:
    """The handler registered for `config_type`, imported on first use."""
    return imported(HANDLERS[config_type])


def run_stage(config: StageConfig, state: ModelState, ctx: StageContext) -> ModelState:
    """Apply one stage config to the model in `state` with its registered handler."""
    return handler_for(type(config))(config, state, ctx)


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
