"""Issue 18's question for a model edgecompress does not know (examples/residual_cnn.py, loaded as file.py:function):
each pruned and fine-tuned point against its own architecture thinned uniformly to the same parameter count, and
each channel-pruned architecture trained from scratch, all on the same epoch budget (seed 0)."""

from __future__ import annotations

import contextlib
import io
import tempfile
import time
from pathlib import Path

from edgecompress.core.models import load_model
from edgecompress.core.seeding import seed_everything
from edgecompress.core.tasks.digits import digits_task
from edgecompress.core.train import train_epochs
from edgecompress.orchestration.curves import sweep

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "residual_cnn.py"
LEVELS = (0.5, 0.7, 0.8, 0.9, 0.95)
METHODS = ("unstructured", "channel")
BASELINE_EPOCHS = 40


def run() -> dict:
    task = digits_task(0)
    seed_everything(0)
    model = load_model(f"{EXAMPLE}:residual_cnn").module
    with tempfile.TemporaryDirectory() as out, contextlib.redirect_stderr(io.StringIO()):
        start = time.perf_counter()
        train_epochs(model, task, BASELINE_EPOCHS, lr=2e-3)
        result = sweep(model.eval(), task, out, LEVELS, METHODS, baseline_epochs=BASELINE_EPOCHS, small_dense=True, from_scratch=True)
        seconds = time.perf_counter() - start
    return {**result.to_json(), "seconds": seconds}


def markdown(result: dict) -> str:
    base = result["baseline"]
    dense = {row["level"]: row for row in result["smaller_dense_comparison"]}
    scratch = {row["level"]: row for row in result["from_scratch_comparison"]}
    budget = BASELINE_EPOCHS + 4
    lines = [
        "## Your own model: smaller dense models and pruning from scratch (residual CNN, seed 0)",
        "",
        "`examples/residual_cnn.py:residual_cnn` (stem conv, depthwise-separable residual block with batch-norm, conv,",
        f"two Linear; {base['params']:,} parameters), defined outside edgecompress, trained {BASELINE_EPOCHS} epochs: {base['score']:.2f}%.",
        f"`sweep(model, task, out, levels, (\"unstructured\", \"channel\"), small_dense=True, from_scratch=True)`, {result['seconds']:.0f} s",
        "in all on this machine. Each pruned point is fine-tuned 4 epochs with distillation. \"Dense, same params\": the",
        "same architecture with every layer's channels cut by one ratio (Torch-Pruning; the 10 outputs kept) to the",
        f"unstructured point's non-zero count, re-initialised and trained {budget} epochs (the pruned model's whole budget).",
        f"\"From scratch\": the channel point's pruned architecture, re-initialised and trained {budget} epochs.",
        "",
        "| level | unstructured + FT (non-zero params) | dense, same params | winner | channel + FT (params) | channel arch. from scratch | winner |",
        "|---|---|---|---|---|---|---|",
    ]
    for level in LEVELS:
        d, s = dense[level], scratch[level]
        versus = f"{d['dense_score']:.2f}% ({d['dense_params']:,}, x{d['dense_width']:.2f})" if d["dense_score"] is not None else "none that small"
        lines.append(
            f"| {level:g} | {d['pruned_score']:.2f}% ({d['params']:,}) | {versus} | {d['winner'] or '-'} | "
            f"{s['finetuned_score']:.2f}% ({s['params']:,}) | {s['from_scratch_score']:.2f}% | {s['winner']} |"
        )
    return "\n".join(lines)
