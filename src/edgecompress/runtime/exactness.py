"""Does an int8 artifact compute what it claims? Every integer node recomputed exactly from its own inputs.

The artifact is run with each integer node's inputs and outputs exposed; for each node, the exact result
(`integer_reference.py`) is compared with what the runtime produced from those same inputs, so one
saturated node does not hide or blame the nodes after it. An output is "off" when it differs by more than
one quantization step (one step is rounding; more is arithmetic the kernel did not do). The runner decides
where this happens: on the host, or on an emulated CPU (`emulation.py`).

    report = check_exactness("final.onnx", batches)              # on this machine
    report = check_exactness("final.onnx", batches, avx2_runner)  # on an emulated AVX2 CPU
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgecompress.core.verbosity import ort_log_severity
from edgecompress.runtime.integer_reference import REFERENCES
from edgecompress.runtime.runners import Batch, Runner, run_on_host
from edgecompress.runtime.targets import host_cpu

OFF_THRESHOLD = 0.001  # the largest fraction of off outputs accepted as exact (0.1%)
# where each op keeps its stored weight and that weight's zero point (input positions)
WEIGHT_INPUTS = {
    "QLinearConv": (3, 5), "ConvInteger": (1, 3), "MatMulInteger": (1, 3),
    "QLinearMatMul": (3, 5), "MatMulIntegerToFloat": (1, 5), "QGemm": (3, 5),
}
# integer ops this module cannot recompute from the node's inputs (they quantize internally)
UNCHECKED_OPS = ("DynamicQuantizeMatMul", "MatMulNBits", "DynamicQuantizeLSTM", "QAttention")
# ops whose uint8 x int8 pairs can saturate on AVX2 (the bound below applies to them)
_DQ_FED = ("Conv", "MatMul", "Gemm")


@dataclass(frozen=True)
class NodeExactness:
    """One integer node: how many of its outputs the runtime computed off by more than one step."""

    node: str
    op: str
    outputs: int
    off: int
    max_error_steps: float
    weight_max_abs: int | None  # largest |weight - zero point|: within 64, uint8 x int8 cannot saturate

    @property
    def off_fraction(self) -> float:
        return self.off / self.outputs if self.outputs else 0.0

    def to_json(self) -> dict:
        return {
            "node": self.node, "op": self.op, "outputs": self.outputs, "off": self.off,
            "off_fraction": round(self.off_fraction, 6), "max_error_steps": round(self.max_error_steps, 3),
            "weight_max_abs": self.weight_max_abs,
        }


@dataclass
class ExactnessReport:
    """Per-node exactness of one artifact on one CPU (host or emulated)."""

    cpu: str
    nodes: list[NodeExactness]
    batches: int
    unchecked: list[str] = field(default_factory=list)

    @property
    def off_fraction(self) -> float:
        total = sum(n.outputs for n in self.nodes)
        return sum(n.off for n in self.nodes) / total if total else 0.0

    def off_nodes(self, threshold: float = OFF_THRESHOLD) -> list[NodeExactness]:
        return [n for n in self.nodes if n.off_fraction > threshold]

    @property
    def exact(self) -> bool:
        return not self.off_nodes()

    def summary(self) -> str:
        """One line for the terminal: the verdict and the worst node."""
        if not self.nodes:
            return f"no integer nodes to check on {self.cpu}"
        if self.exact:
            return f"exact on {self.cpu}: {len(self.nodes)} integer nodes, {100 * self.off_fraction:.3f}% of outputs off"
        worst = max(self.nodes, key=lambda n: n.off_fraction)
        return (
            f"NOT exact on {self.cpu}: {100 * self.off_fraction:.2f}% of integer outputs off by more than one step; "
            f"worst {worst.node} ({worst.op}) {100 * worst.off_fraction:.1f}%"
        )

    def to_json(self) -> dict:
        return {
            "cpu": self.cpu, "exact": self.exact, "threshold": OFF_THRESHOLD, "batches": self.batches,
            "off_fraction": round(self.off_fraction, 6), "nodes": [n.to_json() for n in self.nodes],
            "unchecked_nodes": self.unchecked,
        }


def check_exactness(model_path: str | Path, batches: Iterable[Batch], runner: Runner | None = None, cpu: str | None = None) -> ExactnessReport:
    """Run `model_path` on `batches` with `runner` (default: this machine) and check every integer node.

    >>> check_exactness("final.onnx", [{"input": x}]).exact  # doctest: +SKIP
    True
    """
    batches = list(batches)
    runner = runner or run_on_host
    with tempfile.TemporaryDirectory(prefix="edgecompress-exact-") as work:
        model = _integer_graph(Path(model_path), Path(work))
        instrumented, checked = instrument(model)
        path = Path(work) / "instrumented.onnx"
        onnx.save_model(instrumented, str(path))
        results = runner(path, batches)
    initializers = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    nodes = [_node_exactness(node, initializers, batches, results) for node in checked]
    unchecked = [n.name or n.op_type for n in model.graph.node if n.op_type in UNCHECKED_OPS]
    return ExactnessReport(cpu or f"this machine, {host_cpu().describe()}", nodes, len(batches), unchecked)


def integer_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    return [n for n in model.graph.node if n.op_type in REFERENCES]


def instrument(model: onnx.ModelProto) -> tuple[onnx.ModelProto, list[onnx.NodeProto]]:
    """A copy of `model` whose integer nodes' inputs and outputs are all graph outputs; and those nodes."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    graph = copy.graph
    for number, node in enumerate(graph.node):
        node.name = node.name or f"{node.op_type}_{number}"
    stored = {t.name for t in graph.initializer} | {i.name for i in graph.input}
    exposed = {o.name for o in graph.output}
    checked = integer_nodes(copy)
    for node in checked:
        for name in [*node.input, *node.output]:
            if name and name not in stored and name not in exposed:
                graph.output.append(helper.make_empty_tensor_value_info(name))
                exposed.add(name)
    return copy, checked


def _integer_graph(path: Path, work: Path) -> onnx.ModelProto:
    """The model as its integer nodes really run: a QDQ model is fused by ONNX Runtime first.

    A QDQ graph holds float Conv/MatMul between QuantizeLinear/DequantizeLinear pairs; ONNX Runtime fuses
    them into QLinearConv/QLinearMatMul/QGemm when it loads the model, and those fused kernels are what can
    saturate. ORT writes its optimized graph on request, which is then checked like any QOperator model.
    """
    model = onnx.load(str(path))
    if integer_nodes(model) or not _has_qdq_products(model):
        return model
    import onnxruntime as ort

    optimized = work / "fused.onnx"
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(optimized)
    options.log_severity_level = ort_log_severity()
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return onnx.load(str(optimized))


def _has_qdq_products(model: onnx.ModelProto) -> bool:
    dequantized = {o for n in model.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    return any(n.op_type in _DQ_FED and dequantized & set(n.input) for n in model.graph.node)


def _node_exactness(node: onnx.NodeProto, initializers: dict, batches: list[Batch], results: list[dict]) -> NodeExactness:
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    total = off = 0
    worst = 0.0
    for feed, produced in zip(batches, results):
        def value(name):
            if not name:
                return None
            if name in initializers:
                return initializers[name]
            return feed[name] if name in feed else produced[name]

        expected, step = REFERENCES[node.op_type]([value(n) for n in node.input], attrs)
        actual = produced[node.output[0]]
        error = np.abs(expected.astype(np.float64) - actual.astype(np.float64))
        step = np.broadcast_to(np.asarray(step, dtype=np.float64), error.shape) if np.ndim(step) else float(step)
        if np.issubdtype(actual.dtype, np.integer):  # integers must match to the step: 0 for accumulators
            allowed, unit = step, np.maximum(step, 1.0)
        else:  # float outputs round in float32 too
            allowed, unit = step * (1 + 1e-6) + 1e-5 * np.abs(expected), step
        total += error.size
        off += int((error > allowed).sum())
        worst = max(worst, float((error / unit).max(initial=0.0)))
    return NodeExactness(node.name, node.op_type, total, off, worst, _weight_max_abs(node, initializers))


def _weight_max_abs(node: onnx.NodeProto, initializers: dict) -> int | None:
    weight_at, zero_point_at = WEIGHT_INPUTS[node.op_type]
    if len(node.input) <= weight_at or node.input[weight_at] not in initializers:
        return None
    weight = initializers[node.input[weight_at]].astype(np.int64)
    zero_point = node.input[zero_point_at] if len(node.input) > zero_point_at else ""
    if zero_point in initializers:
        zp = initializers[zero_point].astype(np.int64)
        if zp.size > 1:
            zp = zp.reshape(-1, *([1] * (weight.ndim - 1))) if node.op_type in ("QLinearConv", "ConvInteger") or (node.op_type == "QGemm" and _transposed(node)) else zp.reshape(1, -1)
        weight = weight - zp
    return int(np.abs(weight).max(initial=0))


def _transposed(node: onnx.NodeProto) -> bool:
    return any(a.name == "transB" and helper.get_attribute_value(a) for a in node.attribute)
