"""The removal stages' settings against the model, before any work (`orchestration/pipeline/checks.py` calls
it): a model without the layers a stage removes from, a layer count that would leave no layer, a fraction that
removes no head. Each a one-line UserError naming the field, instead of a failure after the baseline is measured."""

from __future__ import annotations

from typing import Sequence

from torch import nn

from edgecompress.techniques.config import StageConfig
from edgecompress.techniques.transformer.config import RemoveFfn, RemoveHeads, RemoveLayers
from edgecompress.techniques.transformer.decoder_heads import check_decoder_heads, decoder_attention, refuse_cache_change
from edgecompress.techniques.transformer.depth import layer_list, layers_removed
from edgecompress.techniques.transformer.structured import bert_layers, ffn_blocks


def check_removal_stages(model: nn.Module, stages: Sequence[StageConfig], has_data: bool = False) -> None:
    """Raise the first problem of the removal stages in `stages` on `model`, following the layer count down;
    `has_data`: a run with a task's batches (which fix a decoder's cache shape)."""
    layers = None
    for stage in stages:
        if isinstance(stage, RemoveFfn):
            ffn_blocks(model)
        elif isinstance(stage, RemoveHeads):
            if decoder_attention(model):
                check_decoder_heads(model, stage.fraction)
                if has_data:
                    refuse_cache_change(model)
            else:
                bert_layers(model, "remove_heads")
        elif isinstance(stage, RemoveLayers):
            layers = len(layer_list(model)) if layers is None else layers
            layers -= layers_removed(stage.count, stage.fraction, layers)
