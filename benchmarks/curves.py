"""The sweep of `edgecompress sweep` (defaults) and the smaller-dense-model comparison, on the digits CNN."""

from __future__ import annotations

import contextlib
import io
import tempfile

from benchmarks.common import MODELS, trained_state
from edgecompress.curves import sweep
from edgecompress.models import DigitsCNN
from edgecompress.tasks.digits import digits_task

LEVELS = (0.5, 0.8, 0.9, 0.95)


def run() -> dict:
    model = MODELS["digits-cnn"]()
    model.load_state_dict(trained_state("digits-cnn"))
    with tempfile.TemporaryDirectory() as out, contextlib.redirect_stderr(io.StringIO()):
        result = sweep(model.eval(), digits_task(0), out, LEVELS, ("unstructured", "channel"), small_dense=lambda w: DigitsCNN(width=w))
    return result.to_json()


def markdown(result: dict) -> str:
    base = result["baseline"]["score"]
    lines = [
        "## Sparsity sweep and the smaller dense model (digits CNN, `edgecompress sweep` defaults, seed 0)",
        "",
        f"Dense baseline {base:.2f}%. Each point is pruned, exported and scored in ONNX Runtime, before and after 4 epochs",
        "of distilled fine-tuning. \"Dense, same params\" is the CNN with widths scaled so its parameter count matches",
        "the pruned model's non-zero count, trained from scratch for 44 epochs (the pruned model's total budget).",
        "",
        "| method | level | non-zero params | packed | no fine-tune | fine-tuned | dense, same params | winner |",
        "|---|---|---|---|---|---|---|---|",
    ]
    points = result["points"]
    dense = {row["level"]: row for row in result["smaller_dense_comparison"]}
    for method in ("unstructured", "channel"):
        for level in LEVELS:
            raw = next(p for p in points if p["method"] == method and p["level"] == level and not p["finetuned"])
            tuned = next(p for p in points if p["method"] == method and p["level"] == level and p["finetuned"])
            row = dense.get(level) if method == "unstructured" else None
            versus = f"{row['dense_score']:.2f}% ({row['dense_params']:,})" if row else "-"
            winner = row["winner"] if row else "-"
            lines.append(
                f"| {method} | {level:g} | {tuned['nonzero_params']:,} | {tuned['storage_bytes']:,} B | {raw['score']:.2f}% | "
                f"{tuned['score']:.2f}% | {versus} | {winner} |"
            )
    spots = ", ".join(
        f"{m}: {s['level']:g} ({s['score']:.2f}%)" if s else f"{m}: none" for m, s in result["sweet_spots"].items()
    )
    lines += ["", f"Sweet spots within {result['tolerance']:g} points: {spots}."]
    return "\n".join(lines)
