"""metrics.json: every number of a run, each measured on the artifact it names."""

from __future__ import annotations

from edgecompress.reporting.latency_noise import machine_load, speedup
from edgecompress.runtime.environment import environment
from edgecompress.runtime.latency import Latency


def metrics_document(result) -> dict:
    """The JSON document of a RunResult. Keys may be added over time, never renamed."""
    base, final = result.baseline, result.final
    metric = result.task.metric
    load, cpus = machine_load()  # sampled right after the timing, which ends every run
    speedups = {b: speedup(base.latency[b], final.latency[b], b, load, cpus) for b in base.latency if b in final.latency}
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
            "speedup_interval": {f"batch_{b}": [s.low, s.high] for b, s in speedups.items()},
            "latency_noisy": {f"batch_{b}": list(s.reasons) for b, s in speedups.items()},
            # how busy the machine was while it timed: a timing condition, it differs run to run as latencies do
            "latency_conditions": {"load_average_1min": load, "cpus": cpus},
        },
        "measurement": {
            "score": "task metric computed by ONNX Runtime on each artifact, over the whole evaluation set",
            "artifact_bytes": "size on disk of the ONNX file, external data included",
            "storage_bytes": "size on disk of the packed file (.ecz: zeros as a bitmask, entropy-coded); "
            "edgecompress unpack rebuilds the ONNX file bit for bit",
            "latency": "ONNX Runtime CPU, 1 thread, median of interleaved repeats, " + ("the task's own inputs" if result.task.latency_inputs else "random input"),
            "speedup_interval": "baseline p25 / final p75 to baseline p75 / final p25 of the same repeats",
            "latency_noisy": "why the latency is noisy (repeats spread over 20% of the median, or a load "
            "average above the CPU count while it was timed); empty when it is not",
            "params": "parameters of the model the artifact was made from (quantization keeps the count)",
        },
        "environment": environment(),
    }


def _ratio(base: Latency | None, final: Latency | None) -> float | None:
    if base is None or final is None or final.median_ms == 0:
        return None
    return base.median_ms / final.median_ms
