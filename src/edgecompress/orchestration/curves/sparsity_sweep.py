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
from edgecompress.core.models.reinitialise import check_reinitialisable
from edgecompress.core.results import FROM_SCRATCH, SweepPoint, SweepResult, point_key
from edgecompress.core.seeding import check_seed
from edgecompress.core.tasks.task import Task
from edgecompress.orchestration.curves.dense_baseline import dense_width, thinned_architecture
from edgecompress.orchestration.curves.latency import latency_csv, point_latencies
from edgecompress.orchestration.curves.points import PointStore
from edgecompress.orchestration.curves.sweep_trials import CHANNEL_METHODS, METHODS, SweepShared, SweepTrial, run_sweep_trial
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
    small_dense: Callable[[float], nn.Module] | bool | None = None,
    baseline_epochs: int = 40,
    from_scratch: bool = False,
    jobs: int = 1,
    executor: str | Executor = "local",
    ray_address: str | None = None,
    latency_batch: int = 256,
    resume: bool = False,
    force: bool = False,
) -> SweepResult:
    """Prune `model` with each method at each level; score each with and without `finetune_epochs` of training.

    With `small_dense`, each fine-tuned point of the first method is compared with a smaller dense model
    ("dense-small" points) trained from scratch for `baseline_epochs + finetune_epochs` epochs: with
    `small_dense=True`, `model`'s own architecture with every layer's channels thinned by one ratio
    (Torch-Pruning; never the output width), re-initialised, its parameter count the closest to the point's
    non-zero count (at most 5% above it); or a factory taking a width factor (the built-in digits models'
    `width`), its widest model with at most that many. A level no width reaches gets a comparison row without
    a dense model. With `from_scratch`, each channel or channel8 point's pruned architecture
    is also re-initialised and trained from scratch on the same budget ("channel-from-scratch" points): pruning
    from scratch, next to the fine-tuned one. Points run in `jobs` worker
    processes (or on Ray with `executor="ray"`); the result is the same as with one. Latency is timed
    afterwards, in this process, on every point's ONNX file at batch `latency_batch` (see `point_latencies`).
    With `resume`, points an earlier (interrupted or finished) sweep in `out_dir` measured with the same
    model, task and settings are kept; with `force`, an earlier sweep there is replaced.

    >>> sweep(model, task, "runs/sweep", levels=(0.5, 0.9), jobs=2).sweet_spots["unstructured"]  # doctest: +SKIP
    >>> sweep(my_model, task, "runs/mine", small_dense=True, from_scratch=True).scratch_comparison  # doctest: +SKIP
    """
    check_sweep(levels, methods, finetune_epochs, tolerance, latency_batch)
    check_seed(seed)
    chosen = make_executor(executor, jobs, ray_address)
    example = task.example_input()
    small_dense = _small_dense(small_dense, model, example)
    scratch = [m + FROM_SCRATCH for m in methods if m in CHANNEL_METHODS] if from_scratch else []
    if scratch:
        check_reinitialisable(model)
    shared = SweepShared(model, task, example, seed, finetune_epochs, baseline_epochs, small_dense)
    base_fp = fingerprint("sweep", task.name, seed, model_fingerprint(model), finetune_epochs)
    with owned_run_dir(out_dir, "sweep", resume=resume, force=force) as out:
        store = PointStore(out, base_fp)
        keys = [point_key("baseline", 0.0, False)] + [point_key(m, lv, ft) for m in methods for lv in sorted(levels) for ft in (False, True)]
        keys += [point_key(m, lv, True) for m in scratch for lv in sorted(levels)]
        done = {key: point for key in keys if (point := store.load(key)) is not None}
        trials = [SweepTrial("baseline", 0.0, finetuned=False)] if keys[0] not in done else []
        for method in methods:
            for level in sorted(levels):
                raw, tuned = point_key(method, level, False) not in done, point_key(method, level, True) not in done
                if raw or tuned:
                    trials.append(SweepTrial(method, level, raw=raw, finetuned=tuned))
        trials += [SweepTrial(m, lv, raw=False) for m in scratch for lv in sorted(levels) if point_key(m, lv, True) not in done]

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
                widths = {p.level: dense_width(small_dense, p.nonzero_params) for p in first}
                comparison += [_no_dense(p) for p in first if widths[p.level] is None]
                first = [p for p in first if widths[p.level] is not None]
                dense_keys = [point_key("dense-small", p.level, True) for p in first]
                done.update({k: pt for k in dense_keys if (pt := store.load(k)) is not None})
                runner.resize(total=len(keys) + len(dense_keys), completed=len(done))
                missing = [SweepTrial("dense-small", p.level, raw=False, width=widths[p.level]) for p, k in zip(first, dense_keys) if k not in done]
                runner.run(run_sweep_trial, missing, finish)
                for point, key in zip(first, dense_keys):
                    points.append(done[key])
                    comparison.append(_compare(point, done[key], widths[point.level], task))
                comparison.sort(key=lambda row: row["level"])
        baseline = done[keys[0]]
        spots = {m: _sweet_spot(baseline, [p for p in points if p.method == m and p.finetuned], tolerance, task) for m in methods}
        versus_scratch = [_compare_scratch(done[point_key(m.removesuffix(FROM_SCRATCH), p.level, True)], p, task)
                          for m in scratch for p in points if p.method == m]
        latencies = point_latencies(store.folder, [baseline, *points], tuple(shared.example.shape[1:]), latency_batch)
        result = SweepResult(baseline, points, spots, tolerance, comparison, latencies, versus_scratch)
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


def _no_dense(point: SweepPoint) -> dict:
    """The comparison row of a level no width of the architecture reaches: even its thinnest model is larger."""
    return {
        "level": point.level, "params": point.nonzero_params, "pruned_method": point.method, "pruned_score": point.score,
        "dense_width": None, "dense_params": None, "dense_score": None, "winner": None,
    }


def _compare_scratch(tuned: SweepPoint, scratch: SweepPoint, task: Task) -> dict:
    sign = 1 if task.metric.higher_is_better else -1
    winner = "fine-tuned" if sign * (tuned.score - scratch.score) > 0 else ("from scratch" if tuned.score != scratch.score else "tie")
    return {
        "level": tuned.level, "method": tuned.method, "params": tuned.params,
        "finetuned_score": tuned.score, "from_scratch_score": scratch.score, "winner": winner,
    }


def _small_dense(small_dense, model: nn.Module, example) -> Callable[[float], nn.Module] | None:
    """The width factory of the smaller dense models: True means `model`'s own architecture, thinned."""
    if small_dense is True:
        return thinned_architecture(model, example)
    if small_dense is None or small_dense is False:
        return None
    if not callable(small_dense):
        raise UserError(f"small_dense: give True (thin the model's own architecture) or a factory of a width factor, got {type(small_dense).__name__}")
    return small_dense


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
