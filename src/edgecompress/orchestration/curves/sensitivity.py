"""Per-layer sensitivity: prune one layer at a time (magnitude, no fine-tuning), measure the metric drop.

The result says which layers can take compression and which cannot, and turns that into per-layer
amounts for a `prune` stage: each layer gets the highest tested level whose drop stays within `tolerance`
(sensitive layers are pruned less). Scores come from the task's validation loader when it has one, else
from the evaluation set, and the output says which. Each finished trial is kept in the TrialStore
(layers/<layer>-<level>.onnx, then its .json record), so `resume` reruns only the missing ones.
"""

from __future__ import annotations

import copy
import json
import math
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from torch import nn

from edgecompress.core.errors import UserError
from edgecompress.core.evaluate import score_onnx
from edgecompress.core.tasks.task import Task
from edgecompress.onnx import export_model
from edgecompress.orchestration.curves.sparsity_sweep import check_levels
from edgecompress.orchestration.executors import Executor, make_executor
from edgecompress.orchestration.pipeline.stages import Prune
from edgecompress.orchestration.trials.runner import open_trials
from edgecompress.orchestration.trials.store import TrialStore, fingerprint, model_fingerprint
from edgecompress.reporting.plotting.canvas import figure
from edgecompress.storage.files import atomic_write_text
from edgecompress.storage.rundir import owned_run_dir
from edgecompress.techniques.prune.engine import prune_model
from edgecompress.techniques.prune.selection import select_layers


@dataclass(frozen=True)
class LayerSensitivity:
    layer: str
    level: float
    score: float
    drop: float


def layer_sensitivity(
    model: nn.Module,
    task: Task,
    out_dir: str | Path,
    levels: tuple[float, ...] = (0.5, 0.7, 0.8, 0.9, 0.95),
    tolerance: float = 0.5,
    keep_classifier: bool = False,
    jobs: int = 1,
    executor: str | Executor = "local",
    ray_address: str | None = None,
    force: bool = False,
    resume: bool = False,
) -> dict:
    """Write sensitivity.json and sensitivity.png; return the document (rows, per_layer amounts, data used).

    Each (layer, level) is a trial run by the executor (`jobs` local processes, or Ray); results are the same.
    An earlier sensitivity run in `out_dir` is replaced only with `force`; with `resume`, the trials it
    finished with the same model, task and settings are kept.

    >>> layer_sensitivity(model, task, "runs/sens")["per_layer"]  # doctest: +SKIP
    {'conv1': 0.5, 'conv2': 0.9, 'fc1': 0.95, 'fc2': 0.7}
    """
    check_sensitivity(levels, tolerance)
    chosen = make_executor(executor, jobs, ray_address)
    scoring = task.scored_on(task.val_loader) if task.val_loader is not None else task
    example = task.example_input()
    names = list(select_layers(model, keep_classifier=keep_classifier))
    sign = 1 if task.metric.higher_is_better else -1
    shared = _Shared(model, scoring, example, keep_classifier)
    trials = [(name, level) for name in names for level in sorted(levels)]
    base_fp = fingerprint("sensitivity", task.name, model_fingerprint(model), keep_classifier, scoring is task)
    with owned_run_dir(out_dir, "sensitivity", resume=resume, force=force) as out:
        store = TrialStore(out, "layers/{key}.json")
        scores = {}
        for name, level in [(None, 0.0), *trials]:
            key = _trial_key(name, level)
            record = store.load(key, fingerprint(base_fp, key), {"score": float}, needs=[f"layers/{key}.onnx"])
            if record is not None:
                scores[name, level] = record["score"]

        def finish(trial: tuple[str | None, float], result: tuple[float, bytes]) -> list[str]:
            (name, level), (score, onnx) = trial, result
            key = _trial_key(name, level)
            store.save(key, fingerprint(base_fp, key), {"layer": name, "level": level, "score": score},
                       files={f"layers/{key}.onnx": onnx})
            scores[name, level] = score
            return [f"{name or 'baseline'} {level:g}: {score:.2f}"]

        missing = [t for t in [(None, 0.0), *trials] if t not in scores]
        with open_trials(chosen, shared, "sensitivity", total=len(trials) + 1, completed=len(scores)) as runner:
            runner.run(_layer_trial, missing, finish)
        base = scores[None, 0.0]
        rows = [LayerSensitivity(name, level, scores[name, level], sign * (base - scores[name, level])) for name, level in trials]
        per_layer = {}
        for name in names:
            safe = [r.level for r in rows if r.layer == name and r.drop <= tolerance]
            per_layer[name] = max(safe) if safe else 0.0
        document = {
            "baseline_score": base,
            "tolerance": tolerance,
            "scored_on": "validation data" if scoring is not task else "evaluation set (no validation loader given)",
            "rows": [asdict(r) for r in rows],
            "per_layer": per_layer,
            "prune_stage": {"stage": "prune", "pattern": "unstructured", "criterion": "l1", "per_layer": per_layer, "keep_classifier": keep_classifier},
        }
        atomic_write_text(out / "sensitivity.json", json.dumps(document, indent=2) + "\n")
        _plot(out / "sensitivity.png", rows, names, sorted(levels), task.metric.name)
    return document


def check_sensitivity(levels: tuple[float, ...], tolerance: float) -> None:
    """The settings, checked before any training (the command line calls this first)."""
    check_levels(levels)
    if not 0 <= tolerance < math.inf:
        raise UserError(f"--tolerance: must be a finite number >= 0, got {tolerance}")


def _trial_key(name: str | None, level: float) -> str:
    return f"{name}-{level:g}" if name else "baseline"


@dataclass(frozen=True)
class _Shared:
    model: nn.Module
    task: Task
    example: object
    keep_classifier: bool


def _layer_trial(shared: _Shared, trial: tuple[str | None, float]) -> tuple[float, bytes]:
    """Score of the model with one layer pruned to `level` (the baseline for layer None), and its ONNX bytes."""
    name, level = trial
    pruned = copy.deepcopy(shared.model)
    if name is not None:
        config = Prune(pattern="unstructured", criterion="l1", amount=level, layers=(name,), keep_classifier=shared.keep_classifier)
        prune_model(pruned, config, shared.example, train=lambda *a, **k: None)
    with tempfile.TemporaryDirectory(prefix="edgecompress-layer-") as folder:
        path = export_model(pruned, shared.example, Path(folder) / "layer.onnx", shared.task)
        return score_onnx(path, shared.task), path.read_bytes()


def _plot(path: Path, rows: list[LayerSensitivity], names: list[str], levels: list[float], metric: str) -> None:
    drops = np.array([[next(r.drop for r in rows if r.layer == n and r.level == lv) for lv in levels] for n in names])
    with figure(path, ncols=2, width=5.0, height=3.6) as (fig, (ax_lines, ax_heat)):
        for i, name in enumerate(names):
            ax_lines.plot(levels, drops[i], marker="o", label=name)
        ax_lines.set_xlabel("sparsity of that layer alone")
        ax_lines.set_ylabel(f"{metric} drop")
        ax_lines.set_title("sensitivity per layer (no fine-tuning)")
        ax_lines.grid(alpha=0.3)
        ax_lines.legend(fontsize=7)
        image = ax_heat.imshow(drops, aspect="auto", cmap="Reds")
        ax_heat.set_xticks(range(len(levels)), [f"{lv:g}" for lv in levels])
        ax_heat.set_yticks(range(len(names)), names)
        ax_heat.set_xlabel("sparsity")
        ax_heat.set_title(f"{metric} drop")
        for (i, j), value in np.ndenumerate(drops):
            ax_heat.text(j, i, f"{value:.1f}", ha="center", va="center", fontsize=7)
        fig.colorbar(image, ax=ax_heat)
