"""metrics.json: every number of a run, each measured on the artifact it names."""

from __future__ import annotations

from edgecompress.runtime.environment import environment
from edgecompress.runtime.latency import Latency


def metrics_document(result) -> dict:
    """The JSON document of a RunResult. Keys may be added over time, never renamed."""
    base, final = result.baseline, result.final
    metric = result.task.metric
    return {
        "task": result.task.name,
        "metric": {"name": metric.name, "higher_is_better": metric.higher_is_better, "unit": metric.unit},
        "seed": result.seed,
        "target": result.target,
        "baseline": base.to_json(),
        "final": final.to_json(),
        "stages": [m.to_json() for m in result.stages],
        "torch_model": "model.safetensors",
        "summary": {
            "score_change": final.score - base.score,
            "size_ratio": base.artifact_bytes / final.artifact_bytes,
            "storage_ratio": base.artifact_bytes / final.storage_bytes if final.storage_bytes else None,
            "speedup": {f"batch_{b}": _ratio(base.latency.get(b), final.latency.get(b)) for b in base.latency},
        },
        "measurement": {
            "score": "task metric computed by ONNX Runtime on each artifact, over the whole evaluation set",
            "artifact_bytes": "size on disk of the ONNX file, external data included",
            "storage_bytes": "size on disk of the packed file (.ecz: zeros as a bitmask, entropy-coded); "
            "edgecompress unpack rebuilds the ONNX file bit for bit",
            "latency": "ONNX Runtime CPU, 1 thread, median of interleaved repeats, random input",
            "params": "parameters of the model the artifact was made from (quantization keeps the count)",
        },
        "environment": environment(),
    }


def _ratio(base: Latency | None, final: Latency | None) -> float | None:
    if base is None or final is None or final.median_ms == 0:
        return None
    return base.median_ms / final.median_ms
