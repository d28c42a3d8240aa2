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
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from edgecompress.core.errors import RunFailure, UserError, first_line
from edgecompress.onnx.compact_graph import compact_graph
from edgecompress.runtime.feeds import batch_inputs
from edgecompress.storage.files import atomic_path
from edgecompress.techniques.quantize.calibration import CALIBRATION_METHODS, ORT_METHODS, write_mse_calibration
from edgecompress.techniques.quantize.recurrent_int8 import recurrent_int8


class _LoaderReader(CalibrationDataReader):
    """Feeds the first `max_batches` input batches of a loader to ORT's calibrator, as float32 arrays."""

    def __init__(self, input_name: str, batches: Iterable, max_batches: int):
        self._input_name = input_name
        self._arrays = []
        for batch in batches:
            if len(self._arrays) == max_batches:
                break
            self._arrays.append(batch_inputs(batch))
        # ORT's calibrators stack every batch's tensors into one array: a short last batch would break that
        same = [a for a in self._arrays if a.shape == self._arrays[0].shape] if self._arrays else []
        self._arrays = same if same else self._arrays
        self._next = 0

    def get_next(self):
        if self._next >= len(self._arrays):
            return None
        self._next += 1
        return {self._input_name: self._arrays[self._next - 1].astype(np.float32, copy=False)}

    def check_fits(self, model_input: onnx.ValueInfoProto) -> None:
        """One line naming what is wrong if the batches cannot feed `model_input` (before ORT sees them)."""
        if not self._arrays:
            raise UserError("calibration_batches: the calibration data yielded no batches; pass at least one (inputs, targets) batch")
        dims = [d.dim_value if d.HasField("dim_value") else None for d in model_input.type.tensor_type.shape.dim]
        wanted = "x".join(str(d) if d else "N" for d in dims)
        for number, array in enumerate(self._arrays, 1):
            shape = "x".join(map(str, array.shape))
            if not np.issubdtype(array.dtype, np.floating):
                raise UserError(f"calibration_batches: batch {number} holds {array.dtype} values; give float inputs like the model's {model_input.name!r}")
            fits = len(array.shape) == len(dims) and all(d is None or d == n for d, n in zip(dims, array.shape))
            if not fits or array.size == 0:
                raise UserError(f"calibration_batches: batch {number} has shape {shape}; the model's input {model_input.name!r} takes {wanted} (non-empty)")


def quantize_static_int8(
    source: str | Path,
    target: str | Path,
    calibration_batches: Iterable,
    max_batches: int = 16,
    per_channel: bool = True,
    method: str = "minmax",
    graph_format: str = "qoperator",
    keep_float: tuple[str, ...] = (),
    weight_bits: int = 7,
) -> Path:
    """Write an int8 model of `source` to `target`: int8 symmetric weights, uint8 activations.

    `weight_bits` 7 keeps weights within +-64, exact on every CPU class; 8 is exact only where uint8 x int8
    products accumulate in 32 bits (VNNI); see `runtime/targets.py`.

    `method` is how activation ranges are calibrated: minmax, percentile, entropy (ORT's calibrators) or mse
    (`calibration.py`). Bad calibration data (no batches, wrong shape or dtype) is a UserError before ORT
    runs. GRU and LSTM layers get int8 weights too (`recurrent_int8.py`). The file is then compacted
    (`compact_graph.py`: short names, same numbers). ORT's quantizer leaves temporary files in the working
    directory when it fails (FINDINGS sec. 6), so it runs inside a private temporary directory.

    >>> quantize_static_int8("fp32.onnx", "int8.onnx", task.train_loader, method="mse")  # doctest: +SKIP
    """
    if method not in CALIBRATION_METHODS:
        raise UserError(f"calibration: got {method!r}; choose one of {', '.join(CALIBRATION_METHODS)}")
    source, target = Path(source).resolve(), Path(target).resolve()  # we chdir below
    model_input = onnx.load(str(source), load_external_data=False).graph.input[0]
    reader = _LoaderReader(model_input.name, calibration_batches, max_batches)
    reader.check_fits(model_input)
    with ort_working_directory() as work:
        prepared = work / "prepared.onnx"
        quantized = work / "quantized.onnx"
        cache = work / "ranges.json" if method == "mse" else None
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # ORT prints its calibration progress
                quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
                excluded = nodes_using(onnx.load(str(prepared), load_external_data=False).graph, keep_float)
                if cache:
                    write_mse_calibration(prepared, reader, cache, work)
                quantize_static(
                    str(prepared),
                    str(quantized),
                    None if cache else reader,
                    quant_format=QuantFormat.QOperator if graph_format == "qoperator" else QuantFormat.QDQ,
                    per_channel=per_channel,
                    reduce_range=weight_bits == 7,  # ORT's name for weights within +-64
                    activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8,
                    calibrate_method=ORT_METHODS.get(method, CalibrationMethod.MinMax),  # mse: ranges from the cache
                    nodes_to_exclude=excluded,
                    calibration_cache_path=cache,
                )
        except Exception as exc:
            first = first_line(exc)
            raise RunFailure(f"quantize: ONNX Runtime static quantization failed: {first}") from exc
        model = compact_graph(recurrent_int8(onnx.load(str(quantized)), weight_bits))
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
