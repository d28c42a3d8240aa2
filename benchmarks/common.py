"""Shared pieces of the benchmarks: one trained baseline per model, and a table row per compressed result."""

from __future__ import annotations

import contextlib
import functools
import io
import tempfile

from edgecompress.core.models import DigitsCNN, DigitsMLP
from edgecompress.core.seeding import seed_everything
from edgecompress.core.tasks.digits import digits_task
from edgecompress.core.train import train_epochs
from edgecompress.orchestration.pipeline.run import compress

MODELS = {"digits-cnn": DigitsCNN, "digits-mlp": DigitsMLP}


@functools.lru_cache(maxsize=None)
def trained_state(model_name: str, seed: int = 0) -> dict:
    """Train the built-in model as the demo does (40 epochs, lr 2e-3) and cache its weights."""
    seed_everything(seed)
    task = digits_task(seed)
    model = MODELS[model_name]()
    with contextlib.redirect_stderr(io.StringIO()):
        train_epochs(model, task, 40, lr=2e-3)
    return {k: v.clone() for k, v in model.state_dict().items()}


def run_stages(model_name: str, stages, seed: int = 0, keep_dir=None):
    """Compress the trained baseline with `stages` (into `keep_dir`, else a temporary directory)."""
    model = MODELS[model_name]()
    model.load_state_dict(trained_state(model_name, seed))
    with contextlib.ExitStack() as stack:
        out = keep_dir or stack.enter_context(tempfile.TemporaryDirectory())
        stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
        return compress(model, digits_task(seed), stages, out, seed=seed)


def result_row(label: str, result) -> dict:
    base, final = result.baseline, result.final
    return {
        "label": label,
        "baseline_score": base.score,
        "score": final.score,
        "change": final.score - base.score,
        "bytes": final.artifact_bytes,
        "size_ratio": base.artifact_bytes / final.artifact_bytes,
        "storage": final.storage_bytes,
        "storage_ratio": base.artifact_bytes / final.storage_bytes,
        "params": final.params,
        "nonzero": final.nonzero_params,
        "param_ratio": base.params / final.params,
        "macs": final.macs,
        "b1": final.latency[1].median_ms / base.latency[1].median_ms,
        "b256": final.latency[256].median_ms / base.latency[256].median_ms,
        "noisy": max(base.latency[256].spread, final.latency[256].spread) > 0.2,
        "seconds": sum(m.seconds for m in result.stages),
    }


def table(rows: list[dict]) -> list[str]:
    lines = [
        "| recipe | accuracy (change) | ONNX file | smaller | packed .ecz | smaller | params | non-zero | MACs | latency b1 | latency b256 | time |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['label']} | {r['score']:.2f}% ({r['change']:+.2f}) | {r['bytes']:,} B | {r['size_ratio']:.2f}x | "
            f"{r['storage']:,} B | {r['storage_ratio']:.1f}x | "
            f"{r['params']:,} | {r['nonzero']:,} | {r['macs']:,} | {r['b1']:.2f}x | {r['b256']:.2f}x"
            f"{' (spread > 20%)' if r['noisy'] else ''} | {r['seconds']:.1f} s |"
        )
    return lines
