"""ONNX Runtime sessions configured the way we measure: one thread, full graph optimisation."""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort

from edgecompress.core.verbosity import ort_log_severity
from edgecompress.untrusted.onnx_files import check_onnx_file


def make_session(path: str | Path | bytes, threads: int = 1) -> ort.InferenceSession:
    """One intra-op and one inter-op thread: the honest setting on a shared small CPU (see FINDINGS).

    `path` may also be a serialized model (bytes), for probes that never need to touch the disk. A file is
    checked first (`check_onnx_file`: size limits, external data inside its folder): run directories and
    artifact folders may come from someone else.
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = ort_log_severity()
    if not isinstance(path, bytes):
        check_onnx_file(path)
    model = path if isinstance(path, bytes) else str(path)
    return ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
