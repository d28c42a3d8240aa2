"""Sparsity-vs-metric sweeps: each method at each level, scored in ONNX Runtime with and without fine-tuning.

Every point is exported, packed and scored as a file, like every other number in edgecompress; finished
points are saved as they finish (points/*.json), so an interrupted sweep resumes without recomputing them.
The sweet spot of a method is its highest level whose fine-tuned metric stays within `tolerance` of the
baseline.
"""

from __future__ import annotations

import copy
import csv
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from torch import nn

from edgecompress.curves.dense_baseline import matching_width
from edgecompress.delivery import pack
from edgecompress.errors import UserError
from edgecompress.evaluate import score_onnx
from edgecompress.export import export_onnx
from edgecompress.files import atomic_write_text
from edgecompress.measure.params import count_nonzero_params, count_params
from edgecompress.pipeline.checkpoints import fingerprint, model_fingerprint
from edgecompress.pipeline.stages import Prune
from edgecompress.progress import progress_bar
from edgecompress.prune.engine import prune_model
from edgecompress.rundir import owned_run_dir
from edgecompress.seeding import seed_everything
from edgecompress.tasks.task import Task
from edgecompress.train import train_epochs

METHODS: dict[str, Callable[[float], Prune]] = {
    "unstructured": lambda level: Prune(pattern="unstructured", criterion="l1", scope="global", amount=level),
    "channel": lambda level: Prune(pattern="channel", criterion="l2", amount=level),
    "random": lambda level: Prune(pattern="unstructured", criterion="random", scope="global", amount=level),
}


@dataclass(frozen=True)
class SweepPoint:
    method: str
    level: float
    finetuned: bool
    score: float
    params: int
    nonzero_params: int
    artifact_bytes: int
    storage_bytes: int


@dataclass
class SweepResult:
    baseline: SweepPoint
    points: list[SweepPoint]
    sweet_spots: dict[str, SweepPoint | None]
    tolerance: float
    dense_comparison: list[dict] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "baseline": asdict(self.baseline),
            "tolerance": self.tolerance,
            "sweet_spots": {m: (asdict(p) if p else None) for m, p in self.sweet_spots.items()},
            "smaller_dense_comparison": self.dense_comparison,
            "points": [asdict(p) for p in self.points],
        }


def sweep(
    model: nn.Module,
    task: Task,
    out_dir: str | Path,
    levels: tuple[float, ...] = (0.5, 0.7, 0.8, 0.9, 0.95),
    methods: tuple[str, ...] = ("unstructured", "channel"),
    finetune_epochs: int = 4,
    tolerance: float = 0.5,
    seed: int = 0,
    small_dense: Callable[[float], nn.Module] | None = None,
    baseline_epochs: int = 40,
) -> SweepResult:
    """Prune `model` with each method at each level; score each with and without `finetune_epochs` of training.

    With `small_dense` (the architecture's factory taking a width factor), each fine-tuned point of the first
    method is compared with a dense model of that width whose parameter count matches the point's non-zero
    count, trained from scratch for `baseline_epochs + finetune_epochs` epochs.

    >>> sweep(model, task, "runs/sweep", levels=(0.5, 0.9)).sweet_spots["unstructured"]  # doctest: +SKIP
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise UserError(f"--methods: unknown method {unknown[0]!r}; allowed: {', '.join(METHODS)}")
    check_levels(levels)
    if finetune_epochs < 1 or tolerance < 0:
        raise UserError("--finetune-epochs must be >= 1 and --tolerance >= 0")
    example = task.example_input()
    base_fp = fingerprint("sweep", task.name, seed, model_fingerprint(model), finetune_epochs)
    with owned_run_dir(out_dir) as out:
        baseline = _point(out, base_fp, "baseline", 0.0, False, lambda: copy.deepcopy(model), task, example)
        points = []
        jobs = [(m, level) for m in methods for level in sorted(levels)]
        with progress_bar() as bar:
            job = bar.add_task("sweep", total=len(jobs), status="")
            for method, level in jobs:
                pruned_holder = {}

                def pruned(method=method, level=level):
                    seed_everything(seed)
                    pruned_model = copy.deepcopy(model)
                    prune_model(pruned_model, METHODS[method](level), example, train=lambda *a, **k: None,
                                batches=task.train_loader, loss_fn=task.loss_fn, seed=seed)
                    pruned_holder["model"] = pruned_model
                    return pruned_model

                def finetuned():
                    tuned = pruned_holder.get("model") or pruned()
                    seed_everything(seed + 1)
                    train_epochs(tuned, task, finetune_epochs, lr=1e-3, description=f"{method} {level:g}", teacher=model, distill_weight=0.5)
                    return tuned

                points.append(_point(out, base_fp, method, level, False, pruned, task, example))
                points.append(_point(out, base_fp, method, level, True, finetuned, task, example))
                bar.update(job, advance=1, status=f"{method} {level:g}: {points[-1].score:.2f}")
        comparison = []
        if small_dense is not None:
            for point in [p for p in points if p.method == methods[0] and p.finetuned]:
                width = matching_width(small_dense, point.nonzero_params)

                def trained_small(width=width):
                    seed_everything(seed)
                    small = small_dense(width)
                    train_epochs(small, task, baseline_epochs + finetune_epochs, lr=2e-3, description=f"dense x{width:.2f}")
                    return small

                dense = _point(out, base_fp, "dense-small", point.level, True, trained_small, task, example)
                points.append(dense)
                sign = 1 if task.metric.higher_is_better else -1
                winner = "pruned" if sign * (point.score - dense.score) > 0 else ("dense" if point.score != dense.score else "tie")
                comparison.append({
                    "level": point.level, "params": point.nonzero_params, "pruned_method": point.method,
                    "pruned_score": point.score, "dense_width": width, "dense_params": dense.params,
                    "dense_score": dense.score, "winner": winner,
                })
        spots = {m: _sweet_spot(baseline, [p for p in points if p.method == m and p.finetuned], tolerance, task) for m in methods}
        result = SweepResult(baseline, points, spots, tolerance, comparison)
        _write(out, result, task)
    return result


def check_levels(levels: tuple[float, ...]) -> None:
    """Sparsity levels must be in (0, 1): 0 prunes nothing and 1 removes everything."""
    if not levels or any(not 0.0 < x < 1.0 for x in levels):
        raise UserError(f"--levels: each level must be between 0 and 1 (exclusive), got {list(levels)}")


def _point(out: Path, base_fp: str, method, level, finetuned, build, task, example) -> SweepPoint:
    """Load a finished point, or build its model, export, pack and score it, and save it."""
    key = f"{method}-{level:g}-{'ft' if finetuned else 'raw'}"
    fp = fingerprint(base_fp, key)
    record_path = out / "points" / f"{key}.json"
    if record_path.is_file():
        record = json.loads(record_path.read_text())
        if record.pop("fingerprint", None) == fp:
            return SweepPoint(**record)
    model = build()
    onnx_path = export_onnx(model, example, out / "points" / f"{key}.onnx")
    packed = pack(onnx_path, onnx_path.with_suffix(".ecz"))
    point = SweepPoint(
        method, level, finetuned, score_onnx(onnx_path, task), count_params(model), count_nonzero_params(model),
        onnx_path.stat().st_size, packed.packed_bytes,
    )
    atomic_write_text(record_path, json.dumps({"fingerprint": fp, **asdict(point)}))
    return point


def _sweet_spot(baseline: SweepPoint, points: list[SweepPoint], tolerance: float, task: Task) -> SweepPoint | None:
    sign = 1 if task.metric.higher_is_better else -1
    within = [p for p in points if sign * (baseline.score - p.score) <= tolerance]
    return max(within, key=lambda p: (p.level, -p.storage_bytes)) if within else None


def _write(out: Path, result: SweepResult, task: Task) -> None:
    atomic_write_text(out / "sweep.json", json.dumps(result.to_json(), indent=2) + "\n")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(asdict(result.baseline)))
    writer.writeheader()
    for point in [result.baseline, *result.points]:
        writer.writerow(asdict(point))
    atomic_write_text(out / "sweep.csv", buffer.getvalue())
    from edgecompress.curves.plots import plot_sweep

    plot_sweep(result, out / "sweep.png", task.metric)
