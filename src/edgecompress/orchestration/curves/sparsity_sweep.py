"""Sparsity-vs-metric sweeps: each method at each level, scored in ONNX Runtime with and without fine-tuning.

Every point is exported, packed and scored as a file, like every other number in edgecompress; finished
points are saved as they finish (points/*.json), so an interrupted sweep resumes without recomputing them.
The sweet spot of a method is its highest level whose fine-tuned metric stays within `tolerance` of the
baseline.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from torch import nn

from edgecompress.core.errors import UserError
from edgecompress.core.results import SweepPoint, SweepResult, point_key
from edgecompress.core.seeding import check_seed
from edgecompress.core.tasks.task import Task
from edgecompress.orchestration.curves.dense_baseline import matching_width
from edgecompress.orchestration.curves.latency import latency_csv, point_latencies
from edgecompress.orchestration.curves.points import PointStore
from edgecompress.orchestration.curves.sweep_trials import METHODS, SweepShared, SweepTrial, run_sweep_trial
from edgecompress.orchestration.executors import Executor, make_executor
from edgecompress.orchestration.trials.runner import open_trials
from edgecompress.orchestration.trials.store import fingerprint, model_fingerprint
from edgecompress.storage.files import atomic_write_text
from edgecompress.storage.rundir import owned_run_dir

__all__ = ["METHODS", "SweepPoint", "SweepResult", "sweep", "check_levels", "check_sweep"]



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
    jobs: int = 1,
    executor: str | Executor = "local",
    ray_address: str | None = None,
    latency_batch: int = 256,
    resume: bool = False,
    force: bool = False,
) -> SweepResult:
    """Prune `model` with each method at each level; score each with and without `finetune_epochs` of training.

    With `small_dense` (the architecture's factory taking a width factor), each fine-tuned point of the first
    method is compared with a dense model of that width whose parameter count matches the point's non-zero
    count, trained from scratch for `baseline_epochs + finetune_epochs` epochs. Points run in `jobs` worker
    processes (or on Ray with `executor="ray"`); the result is the same as with one. Latency is timed
    afterwards, in this process, on every point's ONNX file at batch `latency_batch` (see `point_latencies`).
    With `resume`, points an earlier (interrupted or finished) sweep in `out_dir` measured with the same
    model, task and settings are kept; with `force`, an earlier sweep there is replaced.

    >>> sweep(model, task, "runs/sweep", levels=(0.5, 0.9), jobs=2).sweet_spots["unstructured"]  # doctest: +SKIP
    """
    check_sweep(levels, methods, finetune_epochs, tolerance, latency_batch)
    check_seed(seed)
    chosen = make_executor(executor, jobs, ray_address)
    shared = SweepShared(model, task, task.example_input(), seed, finetune_epochs, baseline_epochs, small_dense)
    base_fp = fingerprint("sweep", task.name, seed, model_fingerprint(model), finetune_epochs)
    with owned_run_dir(out_dir, "sweep", resume=resume, force=force) as out:
        store = PointStore(out, base_fp)
        keys = [point_key("baseline", 0.0, False)] + [point_key(m, lv, ft) for m in methods for lv in sorted(levels) for ft in (False, True)]
        done = {key: point for key in keys if (point := store.load(key)) is not None}
        trials = [SweepTrial("baseline", 0.0, finetuned=False)] if keys[0] not in done else []
        for method in methods:
            for level in sorted(levels):
                raw, tuned = point_key(method, level, False) not in done, point_key(method, level, True) not in done
                if raw or tuned:
                    trials.append(SweepTrial(method, level, raw=raw, finetuned=tuned))

        def finish(trial: SweepTrial, measured: list) -> list[str]:
            """Checkpoint each point of a trial as it arrives, and show it."""
            shown = []
            for item in measured:
                point = store.save(item)
                done[point.key] = point
                shown.append(f"{point.method} {point.level:g}{' ft' if point.finetuned else ''}: {point.score:.2f}")
            return shown

        with open_trials(chosen, shared, "sweep", total=len(keys), completed=len(done)) as runner:
            runner.run(run_sweep_trial, trials, finish)
            points = [done[key] for key in keys[1:]]
            comparison = []
            if small_dense is not None:
                first = [p for p in points if p.method == methods[0] and p.finetuned]
                widths = {p.level: matching_width(small_dense, p.nonzero_params) for p in first}
                dense_keys = [point_key("dense-small", p.level, True) for p in first]
                done.update({k: pt for k in dense_keys if (pt := store.load(k)) is not None})
                runner.resize(total=len(keys) + len(dense_keys), completed=len(done))
                missing = [SweepTrial("dense-small", p.level, raw=False, width=widths[p.level]) for p, k in zip(first, dense_keys) if k not in done]
                runner.run(run_sweep_trial, missing, finish)
                for point, key in zip(first, dense_keys):
                    points.append(done[key])
                    comparison.append(_compare(point, done[key], widths[point.level], task))
        baseline = done[keys[0]]
        spots = {m: _sweet_spot(baseline, [p for p in points if p.method == m and p.finetuned], tolerance, task) for m in methods}
        latencies = point_latencies(store.folder, [baseline, *points], tuple(shared.example.shape[1:]), latency_batch)
        result = SweepResult(baseline, points, spots, tolerance, comparison, latencies)
        _write(out, result, task)
    return result


def _compare(point: SweepPoint, dense: SweepPoint, width: float, task: Task) -> dict:
    sign = 1 if task.metric.higher_is_better else -1
    winner = "pruned" if sign * (point.score - dense.score) > 0 else ("dense" if point.score != dense.score else "tie")
    return {
        "level": point.level, "params": point.nonzero_params, "pruned_method": point.method,
        "pruned_score": point.score, "dense_width": width, "dense_params": dense.params,
        "dense_score": dense.score, "winner": winner,
    }


def check_sweep(levels, methods, finetune_epochs: int = 4, tolerance: float = 0.5, latency_batch: int = 256) -> None:
    """Every sweep setting, checked before any training (the command line calls this first)."""
    if not methods:
        raise UserError(f"--methods: give at least one of {', '.join(METHODS)}")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise UserError(f"--methods: unknown method {unknown[0][:40]!r}; allowed: {', '.join(METHODS)}")
    check_levels(levels)
    if finetune_epochs < 1 or not 0 <= tolerance < math.inf:
        raise UserError("--finetune-epochs must be >= 1 and --tolerance a finite number >= 0")
    if latency_batch < 1:
        raise UserError("--latency-batch: must be at least 1")


def check_levels(levels: tuple[float, ...]) -> None:
    """Sparsity levels must be in (0, 1): 0 prunes nothing and 1 removes everything (NaN is no level)."""
    if not levels:
        raise UserError("--levels: give at least one level between 0 and 1 (exclusive), e.g. 0.5,0.9")
    bad = [x for x in levels if not 0.0 < x < 1.0]
    if bad:
        raise UserError(f"--levels: each level must be between 0 and 1 (exclusive), got {bad[0]:g}")


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
    atomic_write_text(out / "latency.csv", latency_csv(result.latencies))
    from edgecompress.reporting.curve_plots import plot_sweep

    plot_sweep(result, out / "sweep.png", task.metric)
