"""Remove FFN neurons and attention heads (BERT-style encoders, Llama/Qwen2-style decoders: their heads in
`decoder_heads.py`), so the exported model is smaller and faster.

Masks leave the matrices dense (nothing gets faster); removing a neuron shrinks two matrices for real: its
row of `intermediate.dense` and its column of `output.dense`. A head is `head_size` rows of query, key and
value and the matching columns of `attention.output.dense`. Kept neurons and heads stay in their original
order, so removing nothing changes nothing.

Importance, when calibration batches are given, is activation-aware (Wanda, Sun et al. 2023): a neuron's
activation norm over the real tokens (padding excluded) times the norm of its column in `output.dense`, i.e.
how much it can move the residual stream; a head's score is the norm of its contribution through the
output projection. Without batches, weight norms stand in. Then the output projection is refitted by least
squares to give its old output from the kept inputs alone (`slicing.refit_columns`): one calibration pass gives
both, as Gram matrices. all-MiniLM-L6-v2, half the FFN neurons removed, mean cosine to the original on 2,000
held-out sentences: magnitude 0.703, Wanda 0.795, Wanda + refit 0.938 (256 calibration sentences) or
0.949 (1,024); that head start is worth minutes of distillation.

Sliced by hand, not with Torch-Pruning: the groups are fixed and known for BERT layers. Torch-Pruning's
dependency graph finds exactly these (checked on a tiny BERT), but only by tracing the whole model, and the
head counts still have to be patched by hand afterwards (FINDINGS sec. 6); the slicing is a few lines.

>>> report = remove_ffn_neurons(loaded.model, 0.5, calibration_feeds)  # doctest: +SKIP
>>> report["kept_per_layer"]  # doctest: +SKIP
[768, 768, 768, 768, 768, 768]
"""

from __future__ import annotations

import torch
from torch import nn

from edgecompress.core.errors import UserError
from edgecompress.core.measure.params import count_params
from edgecompress.techniques.transformer.decoder_heads import decoder_attention, remove_decoder_heads
from edgecompress.techniques.transformer.slicing import (
    Feeds,
    backbone,
    check_fraction,
    check_plain,
    has_path,
    head_channels,
    head_contributions,
    input_grams,
    keep_top,
    model_name,
    refit_columns,
    removal_report,
    slice_linear,
    transformers_config,
)


def remove_ffn_neurons(model: nn.Module, fraction: float, feeds: Feeds | None = None, refit: bool = True) -> dict:
    """Remove `fraction` of the intermediate (FFN) neurons in every layer of `model`, in place.

    A BERT-style encoder's FFN is `intermediate.dense` -> `output.dense`; a Llama- or Qwen2-style decoder's is
    SwiGLU, `mlp.gate_proj` and `mlp.up_proj` -> `mlp.down_proj`: a neuron is a row of each input matrix and a
    column of the output one. With `feeds`, neurons are ranked by Wanda on the output projection's inputs and
    (if `refit`) it is refitted on the kept ones.

    >>> remove_ffn_neurons(encoder, 0.5, calibration_feeds)["kept_per_layer"]  # 1536 -> 768 on MiniLM  # doctest: +SKIP
    [768, 768, 768, 768, 768, 768]
    """
    check_fraction(fraction, "remove_ffn.fraction")
    blocks = ffn_blocks(model)
    check_plain([m for ins, down in blocks for m in (*ins, down)])
    before = count_params(model)
    grams = None if feeds is None else input_grams(model, [down for _, down in blocks], feeds)
    kept = []
    for i, (ins, down) in enumerate(blocks):
        if grams is None:
            score = torch.stack([m.weight.detach().norm(dim=1) for m in ins]).prod(dim=0) * down.weight.detach().norm(dim=0)
        else:  # Wanda: the Gram diagonal is each neuron's sum of squared activations
            score = grams[i].diagonal()[:-1].clamp(min=0).sqrt().float() * down.weight.detach().norm(dim=0)
        keep = keep_top(score, fraction)
        if grams is not None and refit and len(keep) < score.numel():
            refit_columns(down, keep, grams[i])
        for linear in ins:
            slice_linear(linear, keep, dim=0)
        slice_linear(down, keep, dim=1)
        kept.append(len(keep))
    config = transformers_config(model)
    if len(set(kept)) == 1 and hasattr(config, "intermediate_size"):
        config.intermediate_size = kept[0]  # only true when every layer has the same width
    return removal_report("ffn neurons", fraction, feeds, refit, kept, before, count_params(model))


def ffn_blocks(model: nn.Module) -> list[tuple[list[nn.Linear], nn.Linear]]:
    """Each transformer layer's FFN as (the Linears whose rows are its neurons, the Linear whose columns are)."""
    decoder = [m.mlp for m in model.modules() if all(has_path(m, f"mlp.{name}") for name in ("gate_proj", "up_proj", "down_proj"))]
    if decoder:
        blocks = [([mlp.gate_proj, mlp.up_proj], mlp.down_proj) for mlp in decoder]
        if not all(isinstance(m, nn.Linear) for ins, down in blocks for m in (*ins, down)):
            raise UserError("remove_ffn: the decoder's mlp projections are not torch Linear layers; structured removal needs them")
        return blocks
    try:
        return [([layer.intermediate.dense], layer.output.dense) for layer in bert_layers(model)]
    except UserError:
        raise UserError(
            f"remove_ffn: needs a BERT-style encoder (encoder.layer[i] with intermediate.dense, output.dense) or a "
            f"Llama/Qwen2-style decoder (mlp.gate_proj, up_proj, down_proj); {model_name(model)} has neither"
        ) from None


def remove_attention_heads(model: nn.Module, fraction: float, feeds: Feeds | None = None, refit: bool = True) -> dict:
    """Remove `fraction` of the attention heads in every layer of `model`, in place. A Llama/Qwen2-style
    decoder goes to `decoder_heads.remove_decoder_heads` (query heads within each key/value group).

    With `feeds`, a head's score is the norm of its contribution through `attention.output.dense` over real
    tokens, and (if `refit`) `attention.output.dense` is refitted on the kept heads; without, weight norms.
    `config.num_attention_heads` is left alone: a head keeps its size (384 / 12 = 32 on MiniLM), and e.g.
    9 heads of 32 in a 384-wide model cannot be written as a BertConfig. The modules carry their own counts;
    save the architecture with the weights (FINDINGS sec. 6).

    >>> remove_attention_heads(encoder, 0.25, calibration_feeds)["kept_per_layer"]  # 12 -> 9 heads  # doctest: +SKIP
    [9, 9, 9, 9, 9, 9]
    """
    check_fraction(fraction, "remove_heads.fraction")
    if decoder_attention(model):
        return remove_decoder_heads(model, fraction, feeds, refit)
    layers = bert_layers(model, "remove_heads")
    attention = [layer.attention for layer in layers]
    check_plain([m for a in attention for m in (a.self.query, a.self.key, a.self.value, a.output.dense)])
    before = count_params(model)
    grams = None if feeds is None else input_grams(model, [a.output.dense for a in attention], feeds)
    kept = []
    for i, att in enumerate(attention):
        heads, size = att.self.num_attention_heads, att.self.attention_head_size
        if grams is None:
            out = att.output.dense.weight.detach().reshape(-1, heads, size)  # [hidden, head, channel]
            score = att.self.value.weight.detach().reshape(heads, -1).norm(dim=1) * out.norm(dim=(0, 2))
        else:
            score = head_contributions(att.output.dense.weight, grams[i], heads, size)
        keep_heads = keep_top(score, fraction)
        channels = head_channels(keep_heads, size)
        if grams is not None and refit and len(keep_heads) < heads:
            refit_columns(att.output.dense, channels, grams[i])
        for linear in (att.self.query, att.self.key, att.self.value):
            slice_linear(linear, channels, dim=0)
        slice_linear(att.output.dense, channels, dim=1)
        # BertSelfAttention reshapes with -1 heads, but these two are what it (and readers) take as the count
        att.self.num_attention_heads = len(keep_heads)
        att.self.all_head_size = len(keep_heads) * size
        kept.append(len(keep_heads))
    return removal_report("attention heads", fraction, feeds, refit, kept, before, count_params(model))


def bert_layers(model: nn.Module, stage: str = "prune") -> list[nn.Module]:
    """The transformer layers of a BERT-style encoder (a SentenceEncoder or its backbone); `stage` names the
    field of the error for any other model."""
    encoder = getattr(backbone(model), "encoder", None)
    layers = list(getattr(encoder, "layer", None) or [])
    needed = ("attention.self.query", "attention.output.dense", "intermediate.dense", "output.dense")
    if not layers or not all(has_path(layer, path) for layer in layers for path in needed):
        raise UserError(
            f"{stage}: structured removal needs a BERT-style encoder (encoder.layer[i] with attention.self, "
            f"intermediate.dense, output.dense) or a Llama/Qwen2-style decoder (self_attn.q_proj, k_proj, v_proj, "
            f"o_proj; mlp.gate_proj, up_proj, down_proj); {model_name(model)} has neither"
        )
    return layers
