"""Static int8 quantization of an ONNX model with ONNX Runtime's quantizer.

Static is the default for convolutional models: dynamic ConvInteger is several times slower in ONNX Runtime
(FINDINGS sec. 2). Two graph formats run the same integer kernels on the CPU:
- "qoperator" (default): QLinearConv / QGemm nodes holding int8 weights directly. Measured on the digits CNN:
  8% smaller file than QDQ (no DequantizeLinear per weight, no bias scale/zero-point tensors), same latency.
- "qdq": QuantizeLinear/DequantizeLinear pairs around float ops, which ONNX Runtime fuses; the format other
  execution providers (GPU, NPU) expect.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import onnx
import torch
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from edgecompress.errors import RunFailure, first_line
from edgecompress.files import atomic_path

CALIBRATION_METHODS = {
    "minmax": CalibrationMethod.MinMax,
    "percentile": CalibrationMethod.Percentile,
    "entropy": CalibrationMethod.Entropy,
}


class _LoaderReader(CalibrationDataReader):
    """Feeds the first `max_batches` input batches of a loader to ORT's calibrator."""

    def __init__(self, input_name: str, batches: Iterable, max_batches: int):
        self._input_name = input_name
        self._iterator = iter(batches)
        self._left = max_batches

    def get_next(self):
        if self._left <= 0:
            return None
        try:
            inputs, _ = next(self._iterator)
        except StopIteration:
            return None
        self._left -= 1
        array = inputs.numpy() if isinstance(inputs, torch.Tensor) else np.asarray(inputs)
        return {self._input_name: array.astype(np.float32, copy=False)}


def quantize_static_int8(
    source: str | Path,
    target: str | Path,
    calibration_batches: Iterable,
    max_batches: int = 16,
    per_channel: bool = True,
    method: str = "minmax",
    graph_format: str = "qoperator",
    keep_float: tuple[str, ...] = (),
) -> Path:
    """Write an int8 QDQ model of `source` to `target`: int8 symmetric weights, uint8 activations.

    ORT's quantizer leaves temporary files in the working directory when it fails (FINDINGS sec. 6), so it
    runs inside a private temporary directory.
    """
    source, target = Path(source).resolve(), Path(target).resolve()  # we chdir below
    input_name = onnx.load(str(source), load_external_data=False).graph.input[0].name
    with ort_working_directory() as work:
        prepared = work / "prepared.onnx"
        quantized = work / "quantized.onnx"
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # ORT prints its calibration progress
                quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
                excluded = nodes_using(onnx.load(str(prepared), load_external_data=False).graph, keep_float)
                quantize_static(
                    str(prepared),
                    str(quantized),
                    _LoaderReader(input_name, calibration_batches, max_batches),
                    quant_format=QuantFormat.QOperator if graph_format == "qoperator" else QuantFormat.QDQ,
                    per_channel=per_channel,
                    activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8,
                    calibrate_method=CALIBRATION_METHODS[method],
                    nodes_to_exclude=excluded,
                )
        except Exception as exc:
            first = first_line(exc)
            raise RunFailure(f"quantize: ONNX Runtime static quantization failed: {first}") from exc
        model = onnx.load(str(quantized))
        del model.graph.value_info[:]  # intermediate shape annotations: not needed to run, ~1% of the file
        with atomic_path(target) as tmp:
            onnx.save_model(model, str(tmp))
    return Path(target)


@contextlib.contextmanager
def ort_working_directory() -> Iterator[Path]:
    """A private temporary directory, made the working directory while ORT's quantizers run in it.

    ORT's quantizers leave ~90 MB `.data` files and temporary models in the working directory when they fail
    (FINDINGS sec. 6); here they land in a directory that is removed afterwards. Paths given to ORT must be
    absolute.
    """
    with tempfile.TemporaryDirectory(prefix="edgecompress-quant-") as work, contextlib.chdir(work):
        yield Path(work)


def nodes_using(graph: onnx.GraphProto, initializers: tuple[str, ...]) -> list[str]:
    """Names of the nodes that consume the named initializers (e.g. "fc1.weight" -> its Gemm node).

    Layers are named by their weights because node names change when ORT's pre-processing optimizes the
    graph, while initializer names survive.
    """
    wanted = set(initializers)
    return [node.name for node in graph.node if wanted & set(node.input)]
