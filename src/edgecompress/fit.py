"""Target-driven mode: find the smallest model that fits a size budget and loses at most a given amount.

No library searches compression recipes against a size and accuracy target, so this is ours: a short list
of candidate recipes, from mild to aggressive, each run with `compress` into its own directory; the
smallest candidate within both targets wins, and the Pareto front of size vs metric is reported. When none
meets the targets, the best found (the most accurate among the smallest that fit, else the smallest) is
returned with a plain message, never nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.ticker
from torch import nn

from edgecompress.errors import UserError
from edgecompress.evaluate import score_onnx
from edgecompress.files import atomic_write_text
from edgecompress.pipeline.run import compress
from edgecompress.pipeline.stages import Finetune, Prune, Qat, Quantize, StageConfig
from edgecompress.plotting.canvas import figure
from edgecompress.rundir import owned_run_dir
from edgecompress.tasks.task import Task


def default_candidates() -> list[tuple[str, list[StageConfig]]]:
    """Candidate recipes, mildest first (each removes more than the one before, roughly)."""
    channels = [Prune(pattern="channel", amount=0.5), Finetune(epochs=24, lr=2e-3, distill=0.5)]
    sparse = lambda amount: Prune(  # noqa: E731
        pattern="unstructured", criterion="l1", scope="global", amount=amount, schedule="gradual",
        steps=10, epochs=24, lr=2e-3, distill=0.5, keep_classifier=False,
    )
    return [
        ("int8", [Quantize()]),
        ("channels-50%, int8", [*channels, Quantize()]),
        ("channels-75%, int8", [Prune(pattern="channel", amount=0.75), Finetune(epochs=32, lr=2e-3, distill=0.5), Quantize()]),
        ("channels-50%, sparse-80%, int8", [*channels, sparse(0.8), Quantize()]),
        ("channels-50%, ternary QAT, int8", [*channels, Qat(bits="ternary"), Quantize()]),
        ("channels-50%, sparse-90%, int8", [*channels, sparse(0.9), Quantize()]),
    ]


@dataclass
class Candidate:
    label: str
    directory: str
    size_bytes: int
    score: float
    drop: float
    fits: bool = False

    def to_json(self) -> dict:
        return dict(self.__dict__)


@dataclass
class FitResult:
    chosen: Candidate
    met_targets: bool
    message: str
    candidates: list[Candidate] = field(default_factory=list)
    pareto: list[str] = field(default_factory=list)


def fit(
    model: nn.Module,
    task: Task,
    out_dir: str | Path,
    max_bytes: int,
    max_drop: float,
    size_of: str = "packed",
    seed: int = 0,
    candidates: list[tuple[str, list[StageConfig]]] | None = None,
) -> FitResult:
    """Run the candidates and choose. Scores for choosing come from `task.val_loader` when given; without one
    they come from the evaluation set, and the report says that the chosen model's numbers are optimistic.

    >>> fit(model, task, "runs/fit", max_bytes=10_000, max_drop=1.0).chosen.label  # doctest: +SKIP
    """
    check_targets(max_drop, size_of)
    candidates = candidates or default_candidates()
    selection = task.scored_on(task.val_loader) if task.val_loader is not None else task
    with owned_run_dir(out_dir) as out:
        results = []
        for index, (label, stages) in enumerate(candidates, start=1):
            directory = f"candidates/{index:02d}"
            run = compress(model, task, stages, out / directory, seed=seed)
            size = run.final.storage_bytes if size_of == "packed" else run.final.artifact_bytes
            if selection is task:
                score, base = run.final.score, run.baseline.score
            else:
                score = score_onnx(out / directory / run.final.artifact, selection)
                base = score_onnx(out / directory / run.baseline.artifact, selection)
            drop = (base - score) if task.metric.higher_is_better else (score - base)
            results.append(Candidate(label, directory, size, score, drop))
        result = _choose(results, max_bytes, max_drop, size_of, selected_on_eval=selection is task)
        _write(out, result, max_bytes, max_drop, size_of, task)
    return result


def check_targets(max_drop: float, size_of: str) -> None:
    """Validate the targets up front (the CLI calls this before it spends a minute training)."""
    if size_of not in ("packed", "onnx"):
        raise UserError(f"--size-of: must be packed or onnx, got {size_of!r}")
    if max_drop < 0:
        raise UserError(f"--max-drop: must be >= 0, got {max_drop}")


def _choose(results: list[Candidate], max_bytes, max_drop, size_of, selected_on_eval) -> FitResult:
    pareto = [c for c in results if not any(o.size_bytes <= c.size_bytes and o.drop < c.drop or o.size_bytes < c.size_bytes and o.drop <= c.drop for o in results)]
    for c in results:
        c.fits = c.size_bytes <= max_bytes and c.drop <= max_drop
    fitting = [c for c in results if c.fits]
    caveat = " (chosen on the evaluation set: no validation data was given, so its numbers are optimistic)" if selected_on_eval else ""
    if fitting:
        chosen = min(fitting, key=lambda c: (c.size_bytes, c.drop))
        message = f"{chosen.label}: {chosen.size_bytes:,} B ({size_of}), drop {chosen.drop:+.2f} meets both targets{caveat}"
        return FitResult(chosen, True, message, results, [c.label for c in pareto])
    small = [c for c in results if c.size_bytes <= max_bytes]
    chosen = min(small, key=lambda c: c.drop) if small else min(results, key=lambda c: c.size_bytes)
    why = "fits the size but loses more" if small else "is the smallest found and still too big"
    message = (
        f"no candidate meets size <= {max_bytes:,} B and drop <= {max_drop}; best found: {chosen.label} "
        f"({chosen.size_bytes:,} B, drop {chosen.drop:+.2f}), which {why}{caveat}"
    )
    return FitResult(chosen, False, message, results, [c.label for c in pareto])


def _write(out: Path, result: FitResult, max_bytes, max_drop, size_of, task) -> None:
    doc = {
        "targets": {"max_bytes": max_bytes, "max_drop": max_drop, "size_of": size_of},
        "met_targets": result.met_targets,
        "message": result.message,
        "chosen": result.chosen.to_json(),
        "pareto": result.pareto,
        "candidates": [c.to_json() for c in result.candidates],
    }
    atomic_write_text(out / "fit.json", json.dumps(doc, indent=2) + "\n")
    with figure(out / "pareto.png", width=6.5, height=4.0) as (fig, (ax,)):
        for number, c in enumerate(result.candidates, start=1):
            marker = "*" if c is result.chosen else ("o" if c.label in result.pareto else "x")
            ax.scatter(c.size_bytes / 1000, -c.drop, marker=marker, s=140 if marker == "*" else 40, label=f"{number}. {c.label}")
            ax.annotate(str(number), (c.size_bytes / 1000, -c.drop), fontsize=8, xytext=(4, 4), textcoords="offset points")
        ax.axvline(max_bytes / 1000, color="#d62728", linestyle="--", linewidth=1, label="max size")
        ax.axhline(-max_drop, color="#ff7f0e", linestyle="--", linewidth=1, label="max drop")
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        ax.set_xlabel(f"{size_of} size (KB)")
        ax.set_ylabel(f"{task.metric.name} change vs baseline")
        ax.set_title("candidates (o: Pareto front, *: chosen)")
        ax.legend(fontsize=7, loc="lower right")
