"""A sentence encoder -> one self-contained ONNX file with dynamic batch and sequence length."""

from __future__ import annotations

from pathlib import Path

import onnx
import torch

from edgecompress.core.errors import RunFailure, first_line
from edgecompress.core.masks import finalized_copy
from edgecompress.families.encoder.batches import INPUT_NAMES
from edgecompress.families.encoder.encoder import SentenceEncoder
from edgecompress.onnx.export import quiet_exporter, strip_debug_metadata
from edgecompress.onnx.export_cache import export_program
from edgecompress.onnx.ort_fusions import sum_before_layernorm
from edgecompress.storage.files import atomic_path

# Not "embedding": an output named like an internal value makes the exported model invalid (FINDINGS sec. 6).
OUTPUT_NAME = "sentence_embedding"


def export_encoder(model: SentenceEncoder, path: str | Path) -> Path:
    """Export `model` atomically to `path`; inputs `input_ids`, `attention_mask` (int64, [batch, sequence]).

    Residual sums are written as `Sum` so ONNX Runtime keeps its fast kernels (`export/ort_fusions.py`).

    >>> export_encoder(load_encoder().model, "minilm.onnx")  # doctest: +SKIP
    """
    model = finalized_copy(model).eval()
    ids = torch.tensor([[101, 7592, 2088, 1012, 102], [101, 2023, 102, 0, 0]], dtype=torch.int64)
    mask = (ids != 0).to(torch.int64)
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    try:
        with atomic_path(path) as tmp, quiet_exporter():
            proto = export_program(model, (ids, mask), input_names=list(INPUT_NAMES), output_names=[OUTPUT_NAME],
                                   dynamic_shapes=({0: batch, 1: sequence}, {0: batch, 1: sequence}))
            proto = strip_debug_metadata(proto)
            sum_before_layernorm(proto)  # ORT's fused SkipLayerNormalization is 6x slower here
            onnx.save_model(proto, str(tmp), save_as_external_data=False)
    except Exception as exc:
        raise RunFailure(f"export: the encoder could not be exported to ONNX: {first_line(exc)}") from exc
    return Path(path)
