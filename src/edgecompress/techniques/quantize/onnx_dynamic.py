"""Dynamic int8 quantization of an ONNX model with ONNX Runtime: int8 weights, activations quantized per call.

Dynamic is the deployable int8 path for MatMul-heavy models (MLPs, transformers): it needs no calibration data,
and ORT's MatMulInteger runs 1.8x-4.0x faster than its fp32 MatMul on this CPU (FINDINGS sec. 2). Conv nets
should use static QDQ (`onnx_static.py`): dynamic ConvInteger is several times slower.

Gemm: our exporter writes every nn.Linear as `Gemm(transB=1)`, and ORT's dynamic mode has no Gemm kernel.
ORT (1.32) rewrites each plain Gemm into MatMul + Add itself before quantizing (the weight becomes the
transposed initializer `<w>_Transposed`, the node `<gemm>_MatMul`), but it then quantizes that MatMul only if
"MatMul" is among the op types, and excluding the Gemm's own name no longer matches. Asking ORT for "Gemm"
alone therefore silently writes an fp32 model. So we select the nodes ourselves, hand ORT the names it will
see, and afterwards check that every selected weight really became int8.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Iterable, Iterator, Mapping

import numpy as np
import onnx
from onnxruntime.quantization import QuantType, quantize_dynamic

from edgecompress.core.errors import RunFailure, UserError, first_line
from edgecompress.core.verbosity import is_verbose
from edgecompress.onnx.compact_graph import compact_graph
from edgecompress.storage.files import atomic_path
from edgecompress.techniques.quantize.onnx_gptq import gptq_matmul_integer_weights
from edgecompress.techniques.quantize.onnx_static import ort_working_directory
from edgecompress.techniques.quantize.recurrent_int8 import recurrent_int8

SUPPORTED_OP_TYPES = ("MatMul", "Gemm")


def quantize_dynamic_int8(
    source: str | Path,
    target: str | Path,
    per_channel: bool = True,
    op_types: tuple[str, ...] = ("MatMul", "Gemm"),
    exclude_nodes: tuple[str, ...] = (),
    weight_bits: int = 7,
    gptq_calibration: Iterable[Mapping[str, np.ndarray]] | None = None,
) -> Path:
    """Write a dynamically quantized copy of `source` to `target`: int8 symmetric weights, uint8 activations.

    `weight_bits` 7 keeps weights within +-64, exact on every CPU class; 8 is exact only where uint8 x int8
    products accumulate in 32 bits (VNNI); see `runtime/targets.py`. With `gptq_calibration` (input feeds),
    the integers are chosen by GPTQ on ORT's grid instead of rounded to nearest (`onnx_gptq.py`).

    Per-channel weight scales are the default: per-tensor scales lose most of a transformer's fidelity
    (FINDINGS sec. 5-6). Only MatMul/Gemm nodes whose weight is a stored initializer are quantized; nodes
    named in `exclude_nodes` (names as in `source`) stay float. Raises RunFailure if ORT leaves a selected
    weight in float, rather than writing a model that only looks quantized. GRU and LSTM layers get int8
    weights too (`recurrent_int8.py`). The file is compacted
    (`compact_graph.py`: short names, same outputs).

    >>> quantize_dynamic_int8("model.onnx", "model.int8.onnx")  # doctest: +SKIP
    PosixPath('model.int8.onnx')
    """
    op_types, exclude_nodes = _as_names(op_types, "op_types"), _as_names(exclude_nodes, "exclude_nodes")
    unsupported = [t for t in op_types if t not in SUPPORTED_OP_TYPES]
    if not op_types or unsupported:
        given = repr(unsupported[0]) if unsupported else "nothing"
        raise UserError(f"op_types: got {given}; allowed: one or more of {', '.join(SUPPORTED_OP_TYPES)}")
    source, target = Path(source).resolve(), Path(target).resolve()  # we chdir below
    if not source.is_file():
        raise UserError(f"source: no ONNX file at {source}")
    graph = onnx.load(str(source), load_external_data=False).graph
    selected, unselected = _weight_matmuls(graph, op_types, exclude_nodes)

    with ort_working_directory() as work:
        quantized = work / "quantized.onnx"
        try:
            with _without_preprocessing_advice():
                quantize_dynamic(
                    str(source),
                    str(quantized),
                    op_types_to_quantize=["MatMul"],  # Gemm is quantized as the MatMul ORT rewrites it into
                    per_channel=per_channel,
                    reduce_range=weight_bits == 7,  # ORT's name for weights within +-64
                    weight_type=QuantType.QInt8,
                    nodes_to_exclude=[_name_seen_by_ort(node) for node in unselected],
                    # Transformer exports have tensors shape inference cannot type (FINDINGS sec. 6).
                    extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
                )
            model = onnx.load(str(quantized))
            if gptq_calibration is not None:
                gptq_matmul_integer_weights(model, onnx.load(str(source)), gptq_calibration, weight_max=64 if weight_bits == 7 else 127)
            quantized_names = {n.name for n in model.graph.node if n.op_type == "MatMulInteger"}
        except Exception as exc:
            first = first_line(exc)
            raise RunFailure(f"quantize: ONNX Runtime dynamic quantization failed: {first}") from exc
        if len(quantized_names) < len(selected):
            left = [n.name for n in selected if f"{_name_seen_by_ort(n)}_quant" not in quantized_names]
            named = f" ({', '.join(left[:5])})" if left else ""
            raise RunFailure(
                f"quantize: ONNX Runtime left {len(selected) - len(quantized_names)} of {len(selected)} weight "
                f"matmuls in float{named}; keep them float with exclude_nodes"
            )
        with atomic_path(target) as tmp:
            onnx.save_model(compact_graph(recurrent_int8(model, weight_bits)), str(tmp))  # same numbers, ~2-3% smaller on small models
    return Path(target)


def _as_names(names, parameter: str) -> tuple[str, ...]:
    if isinstance(names, str):  # ("Gemm") without the comma would otherwise become G, e, m, m
        raise UserError(f"{parameter}: give a tuple of names, e.g. ({names!r},), not the string {names!r}")
    return tuple(names)


def _weight_matmuls(
    graph: onnx.GraphProto, op_types: tuple[str, ...], exclude_nodes: tuple[str, ...]
) -> tuple[list[onnx.NodeProto], list[onnx.NodeProto]]:
    """(nodes to quantize, MatMul/Gemm nodes to keep float), from the top-level graph."""
    node_names = [n.name for n in graph.node if n.name]
    unknown = [name for name in exclude_nodes if name not in set(node_names)]
    if unknown:
        shown = ", ".join(node_names[:8]) + (", ..." if len(node_names) > 8 else "")
        raise UserError(f"exclude_nodes: no node named {unknown[0]!r} in the model; nodes are: {shown}")
    initializers = {t.name for t in graph.initializer}
    selected, unselected = [], []
    for node in graph.node:
        if node.op_type not in SUPPORTED_OP_TYPES:
            continue
        wanted = node.op_type in op_types and node.name not in exclude_nodes
        # Only a constant weight can be stored as int8 (ORT's MatMulConstBOnly rule).
        (selected if wanted and node.input[1] in initializers else unselected).append(node)
    if not selected:
        present = sorted({n.op_type for n in graph.node if n.op_type in SUPPORTED_OP_TYPES})
        raise UserError(
            f"op_types: no {'/'.join(op_types)} node with stored weights is left to quantize; "
            f"the model has {', '.join(present) or 'no MatMul or Gemm'} (excluded: {len(exclude_nodes)})"
        )
    return selected, unselected


def _name_seen_by_ort(node: onnx.NodeProto) -> str:
    """ORT renames a Gemm to `<name>_MatMul` when it rewrites it, before it looks at nodes_to_exclude."""
    return f"{node.name}_MatMul" if node.op_type == "Gemm" and node.name else node.name


class _DropPreprocessingAdvice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Please consider to run pre-processing")


@contextlib.contextmanager
def _without_preprocessing_advice() -> Iterator[None]:
    """ORT logs advice to run `quant_pre_process` first; we skip it on purpose.

    Pre-processing (symbolic shape inference, graph fusions) is not needed to quantize stored MatMul weights,
    and it fails on transformer exports with a dynamic sequence length (FINDINGS sec. 6).
    """
    if is_verbose():
        yield
        return
    advice = _DropPreprocessingAdvice()
    logging.root.addFilter(advice)
    try:
        yield
    finally:
        logging.root.removeFilter(advice)
