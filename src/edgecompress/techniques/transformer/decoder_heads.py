"""Remove attention heads of Llama/Qwen2-style decoders (self_attn.q_proj, k_proj, v_proj, o_proj), for real.

Such a decoder shares each key/value head among a group of query heads (grouped-query attention; transformers'
attention repeats key/value head j for query heads j*g .. j*g+g-1). Two cases:
- groups of several query heads: the same number of query heads is removed in every group (rows of q_proj,
  columns of o_proj), so the layout stays a valid GQA one and the key/value cache is unchanged;
- one query head per key/value head (plain multi-head attention): whole heads go, their q, k and v rows and
  o_proj columns, and the cache shrinks with them.
`fraction` is the share of each group's query heads removed (of all heads, for plain attention), rounded to
the nearest whole head (halves up) with at least one kept: 0.25 or 0.33 of 3 removes 1, 0.5 removes 2.

Heads are ranked as the encoder's are (`structured.py`): by the norm of their contribution through o_proj on
calibration batches (from o_proj's input Gram matrix), o_proj then refitted by least squares on the kept
heads; without batches, by weight norms (the head's own q rows, or v rows for plain attention, times its o_proj
columns). What transformers' attention reads afterwards is set on the module (`num_key_value_groups`) and on
the config (`num_attention_heads`, `num_key_value_heads`, and `head_dim` explicitly, since the width over the
new head count no longer gives it): the cache shape of the export is read from there (`lm/decoder.py`).

>>> remove_decoder_heads(decoder.model, 0.33, calibration_feeds)["query_heads_per_group"]  # 3 -> 2  # doctest: +SKIP
2
"""

from __future__ import annotations

import torch
from torch import nn

from edgecompress.core.errors import UserError
from edgecompress.core.measure.params import count_params
from edgecompress.techniques.transformer.slicing import (
    Feeds,
    check_plain,
    has_path,
    head_channels,
    head_contributions,
    input_grams,
    refit_columns,
    removal_report,
    removed_count,
    slice_linear,
    transformers_config,
)

PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj")


def decoder_attention(model: nn.Module) -> list[nn.Module]:
    """The self-attention modules of a Llama/Qwen2-style decoder, layer by layer (empty for other models)."""
    return [m.self_attn for m in model.modules() if all(has_path(m, f"self_attn.{p}") for p in PROJECTIONS)]


def remove_decoder_heads(model: nn.Module, fraction: float, feeds: Feeds | None = None, refit: bool = True) -> dict:
    """Remove `fraction` of the query heads of every key/value group (or of all heads, for plain multi-head
    attention) in every layer of a Llama/Qwen2-style decoder, in place; see the module's docstring."""
    attention = decoder_attention(model)
    linears = [getattr(att, p) for att in attention for p in PROJECTIONS]
    if not all(isinstance(m, nn.Linear) for m in linears) or not all(hasattr(att, "head_dim") for att in attention):
        raise UserError("remove_heads: the decoder's attention projections are not torch Linear layers with a head_dim; structured removal needs them")
    check_plain(linears)
    before = count_params(model)
    grams = None if feeds is None else input_grams(model, [att.o_proj for att in attention], feeds)
    for i, att in enumerate(attention):
        size = att.head_dim
        heads, kv = att.q_proj.out_features // size, att.k_proj.out_features // size
        group = heads // kv
        drop = heads_removed(fraction, heads, group)
        score = _scores(att, heads, size, None if grams is None else grams[i])
        if group > 1:  # the same number from every group, so query head h still reads key/value head h // group
            keep = torch.cat([torch.topk(score[j * group : (j + 1) * group], group - drop).indices.sort().values + j * group for j in range(kv)])
            sliced = (att.q_proj,)
        else:
            keep = torch.topk(score, heads - drop).indices.sort().values
            sliced = (att.q_proj, att.k_proj, att.v_proj)
        channels = head_channels(keep, size)
        if grams is not None and refit:
            refit_columns(att.o_proj, channels, grams[i])
        for linear in sliced:
            slice_linear(linear, channels, dim=0)
        slice_linear(att.o_proj, channels, dim=1)
    counts = sync_attention(model)
    kept, kv_kept = [q for q, _ in counts], [kv for _, kv in counts]
    per_group = sorted({q // kv for q, kv in counts})
    report = removal_report("attention heads", fraction, feeds, refit, kept, before, count_params(model))
    return {**report, "kv_heads_per_layer": kv_kept, "query_heads_per_group": per_group[0] if len(per_group) == 1 else per_group}


def heads_removed(fraction: float, heads: int, group: int) -> int:
    """Query heads removed from each group of `group` (from all `heads` if a group is one head); refused if none."""
    n, shared = (group, "query heads per key/value head") if group > 1 else (heads, "heads")
    drop = removed_count(fraction, n)
    if drop == 0:
        raise UserError(f"remove_heads.fraction: {fraction} of {n} {shared} removes none (rounded to the nearest head); "
                        f"use at least {0.5 / n:.2f}")
    return drop


def refuse_cache_change(model: nn.Module) -> None:
    """A decoder with one query head per key/value head loses key/value heads, so its cache changes shape;
    a run's token batches carry the original's (empty) cache, so such a run is refused before any work
    (`checks.py`), and `apply` with a task at the stage."""
    attention = decoder_attention(model)
    if attention and attention[0].k_proj.out_features == attention[0].q_proj.out_features:
        raise UserError("remove_heads: this decoder has one query head per key/value head, so removing heads changes its "
                        "key/value cache, which a language-model run cannot feed yet; use remove_ffn or remove_layers")


def check_decoder_heads(model: nn.Module, fraction: float) -> None:
    """Before any work: `fraction` removes at least one head of every layer of a decoder."""
    for att in decoder_attention(model):
        size = getattr(att, "head_dim", None)
        if isinstance(size, int) and isinstance(att.q_proj, nn.Linear) and isinstance(att.k_proj, nn.Linear):
            heads, kv = att.q_proj.out_features // size, att.k_proj.out_features // size
            heads_removed(fraction, heads, heads // max(kv, 1))


def _scores(att: nn.Module, heads: int, size: int, gram: torch.Tensor | None) -> torch.Tensor:
    """Each query head's importance: its contribution through o_proj on calibration tokens, else weight norms."""
    if gram is not None:
        return head_contributions(att.o_proj.weight, gram, heads, size)
    own = att.q_proj if att.k_proj.out_features < att.q_proj.out_features else att.v_proj  # v is shared in a group
    rows = own.weight.detach().reshape(heads, -1).norm(dim=1)
    return rows * att.o_proj.weight.detach().reshape(-1, heads, size).norm(dim=(0, 2))


def sync_attention(model: nn.Module) -> list[tuple[int, int]]:
    """Derive what transformers' attention reads from the projections' shapes, after removal or after a pruned
    checkpoint was loaded into the original architecture: each module's `num_key_value_groups` (what eager and
    sdpa attention repeat the key/value heads by) and the config's head counts and `head_dim` (set explicitly:
    the width over the new head count no longer gives it). Returns (query heads, key/value heads) per layer.
    """
    counts = []
    for att in decoder_attention(model):
        heads, kv = att.q_proj.out_features // att.head_dim, att.k_proj.out_features // att.head_dim
        att.num_key_value_groups = heads // kv
        counts.append((heads, kv))
    config = transformers_config(model)
    if config is not None and len(set(counts)) == 1:  # one count for all layers: the same fraction leaves the same
        config.num_attention_heads, config.num_key_value_heads = counts[0]
        config.head_dim = decoder_attention(model)[0].head_dim
    return counts
