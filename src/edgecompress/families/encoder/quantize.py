"""Quantize an exported sentence encoder for ONNX Runtime: the int8 route and the low-bit route.

int8 (the fast one): MatMul weights int8 per output channel with activations quantized per call by ORT's
dynamic quantizer (MatMulInteger: 2-4x faster than fp32 on this CPU), after scaling the few outlier
activation channels into the weights (`quantize/outlier_smoothing.py`), and the word-embedding table int8
in blocks of a row. Low-bit (the small one): MatMul weights int4 in blocks (MatMulNBits) and the embedding
table int4: ~6x smaller than fp32, to be paired with distillation to recover fidelity.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import onnx

from edgecompress.core.errors import UserError
from edgecompress.storage.files import atomic_path
from edgecompress.techniques.quantize.channel_ranges import channel_absmax
from edgecompress.techniques.quantize.embedding_tables import quantize_embedding_tables
from edgecompress.techniques.quantize.matmul_error import matmul_quantization_error
from edgecompress.techniques.quantize.onnx_dynamic import quantize_dynamic_int8
from edgecompress.techniques.quantize.onnx_lowbit import quantize_int4_weights
from edgecompress.techniques.quantize.outlier_smoothing import smooth_outlier_channels, weight_matmul_inputs


@dataclass
class QuantizedEncoder:
    path: Path
    details: dict = field(default_factory=dict)


def quantize_encoder_int8(
    source: str | Path,
    target: str | Path,
    calibration: Iterable[Mapping[str, np.ndarray]],
    outlier_channels: int = 8,
    embedding_block_size: int = 128,
    keep_float: int = 0,
    weight_bits: int = 7,
    gptq: bool = True,
) -> QuantizedEncoder:
    """int8 encoder: outlier smoothing from `calibration` batches, dynamic int8 MatMuls, int8 embeddings.

    `weight_bits` 7 (weights within +-64) is exact on every CPU class, 8 only on VNNI (`runtime/targets.py`);
    `gptq` rounds the MatMul weights with GPTQ on the same calibration batches, which recovers most of what
    the lost bit costs (`quantize/gptq.py`).

    Mixed precision: the `keep_float` MatMuls with the lowest simulated-int8 SQNR on the calibration
    batches (`quantize/matmul_error.py`, measured after smoothing) stay fp32; `details` lists them.

    >>> quantize_encoder_int8("minilm.onnx", "minilm.int8.onnx", token_batches(tok, corpus.train[:256]))  # doctest: +SKIP
    """
    calibration = list(calibration)  # read up to twice: ranges, then per-MatMul errors
    model = onnx.load(str(source))
    details: dict = {"route": "int8", "weight_bits": weight_bits, "rounding": "gptq" if gptq else "nearest"}
    if outlier_channels > 0:
        ranges = channel_absmax(model, weight_matmul_inputs(model), calibration)
        smoothed = smooth_outlier_channels(model, ranges, outlier_channels)
        model = smoothed.model
        details["outlier_channels"] = outlier_channels
        details["smoothed_tensors"] = len(smoothed.outlier_channels)
    kept: tuple[str, ...] = ()
    if keep_float:
        errors = matmul_quantization_error(model, calibration, max_batches=len(calibration))
        if keep_float >= len(errors):
            raise UserError(f"keep_float: {keep_float} would keep all {len(errors)} weight MatMuls in float; give fewer")
        kept = tuple(e.node for e in errors[:keep_float])
        details["kept_float"] = [e.to_json() for e in errors[:keep_float]]
        details["kept_float_why"] = f"lowest SQNR of the MatMul output under simulated int8, on {len(calibration)} calibration batches"
        details["matmul_sqnr_db"] = {e.node: round(e.sqnr_db, 2) for e in errors}
    with tempfile.TemporaryDirectory() as scratch:
        smoothed_path, int8_path = Path(scratch) / "smoothed.onnx", Path(scratch) / "int8.onnx"
        onnx.save_model(model, str(smoothed_path))
        quantize_dynamic_int8(
            smoothed_path, int8_path, per_channel=True, op_types=("MatMul",), exclude_nodes=kept, weight_bits=weight_bits,
            gptq_calibration=calibration if gptq else None,
        )
        quantized, tables = quantize_embedding_tables(onnx.load(str(int8_path)), bits=8, block_size=embedding_block_size)
    details["embedding_tables"] = tables
    return QuantizedEncoder(_save(quantized, target), details)


def quantize_encoder_int4(
    source: str | Path,
    target: str | Path,
    block_size: int = 32,
    embedding_bits: int = 4,
    embedding_block_size: int = 64,
) -> QuantizedEncoder:
    """Low-bit encoder: int4 MatMul weights in blocks (MatMulNBits), int4 (or int8) embedding table.

    The defaults are the grids `quantize/block_qat.py` trains on (so a QAT model quantizes exactly).
    """
    with tempfile.TemporaryDirectory() as scratch:
        int4_path = Path(scratch) / "int4.onnx"
        quantize_int4_weights(source, int4_path, block_size=block_size)
        quantized, tables = quantize_embedding_tables(onnx.load(str(int4_path)), bits=embedding_bits, block_size=embedding_block_size)
    details = {"route": "int4", "block_size": block_size, "embedding_bits": embedding_bits, "embedding_tables": tables}
    return QuantizedEncoder(_save(quantized, target), details)


def _save(model: onnx.ModelProto, target: str | Path) -> Path:
    with atomic_path(target) as tmp:
        onnx.save_model(model, str(tmp))
    return Path(target)
