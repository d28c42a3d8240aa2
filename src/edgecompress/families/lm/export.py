"""A decoder -> one ONNX file that takes and returns its key/value cache, with dynamic batch and lengths.

One graph serves both phases of generation, as ONNX Runtime GenAI's and Optimum's "with past" models do: the
prompt runs with a cache of length 0, each decoding step with the cache the previous step returned.
"""

from __future__ import annotations

from pathlib import Path

import onnx
import torch

from edgecompress.core.errors import RunFailure, first_line
from edgecompress.core.masks import finalized_copy
from edgecompress.families.lm.decoder import LOGITS, CacheShape, CausalLM, KvCacheStep
from edgecompress.families.lm.fusion import fuse_group_query_attention
from edgecompress.onnx.export import quiet_exporter, strip_debug_metadata
from edgecompress.onnx.export_cache import export_program
from edgecompress.storage.files import atomic_path

INPUT_IDS, ATTENTION_MASK = "input_ids", "attention_mask"
# ONNX's own Attention, RotaryEmbedding and RMSNormalization ops (opset 23; ONNX Runtime 1.23+ runs them): the
# exporter writes one node where opset 20 wrote ~15 (931 -> 487 nodes for stdlib-coder), and a decoding step
# takes 3.3 ms instead of 4.6 ms in ONNX Runtime, with the same logits (max difference 4e-6).
OPSET = 23


def export_decoder(model: CausalLM, path: str | Path, fuse: bool = True) -> Path:
    """Export `model` atomically to `path`: inputs `input_ids` [batch, sequence], `attention_mask` [batch,
    past + sequence] and the cache `past_key_values.L.key|value`; outputs `logits` and `present.L.key|value`.
    With `fuse`, a rotary decoder's attention becomes ONNX Runtime's GroupQueryAttention (`fusion.py`: a
    decoding step about 20-30% faster; masks must be full or right-padded); other graphs are left as exported.

    >>> export_decoder(load_decoder().model, "lm.onnx")  # doctest: +SKIP
    """
    model = finalized_copy(model).eval()
    shape = model.cache
    ids = torch.tensor([[1, 2, 3], [4, 5, 6]], dtype=torch.int64)
    past = list(shape.empty(batch=2, length=2).values())
    mask = torch.ones(2, 5, dtype=torch.int64)
    batch, sequence, cached, total = (torch.export.Dim(name) for name in ("batch", "sequence", "past", "total"))
    try:
        with atomic_path(path) as tmp, quiet_exporter(), torch.no_grad():
            proto = export_program(KvCacheStep(model), (ids, mask, *past), input_names=[INPUT_IDS, ATTENTION_MASK, *shape.past_names()],
                                   output_names=[LOGITS, *shape.present_names()],
                                   dynamic_shapes=({0: batch, 1: sequence}, {0: batch, 1: total}, tuple({0: batch, 2: cached} for _ in past)),
                                   opset_version=OPSET)
            context = getattr(model.config, "max_position_embeddings", None)
            if fuse and isinstance(context, int) and _full_attention(model.config):
                proto = fuse_group_query_attention(proto, context) or proto
            onnx.save_model(strip_debug_metadata(proto), str(tmp), save_as_external_data=False)
    except Exception as exc:
        raise RunFailure(f"export: the decoder could not be exported to ONNX: {first_line(exc)}") from exc
    return Path(path)


def _full_attention(config) -> bool:
    """Every layer attends to the whole past: the fused graph is given no sliding window."""
    if any(kind != "full_attention" for kind in getattr(config, "layer_types", None) or []):
        return False
    return getattr(config, "sliding_window", None) is None or getattr(config, "use_sliding_window", True) is False


def graph_cache_shape(path: str | Path) -> CacheShape:
    """The key/value cache an exported file takes, read from its inputs: after heads or layers were removed it is
    not the original model's, so each file is fed by its own.

    >>> graph_cache_shape("final.onnx").layers  # doctest: +SKIP
    10
    """
    graph = onnx.load(str(path), load_external_data=False).graph
    keys = [i for i in graph.input if i.name.startswith("past_key_values.") and i.name.endswith(".key")]
    if not keys:
        raise RunFailure(f"export: {path} takes no past_key_values inputs; it is not a decoder exported with its cache")
    dims = keys[0].type.tensor_type.shape.dim
    return CacheShape(len(keys), dims[1].dim_value, dims[3].dim_value)
