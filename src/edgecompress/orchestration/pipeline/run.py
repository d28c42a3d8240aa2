"""`compress`: run stages in order, export and measure each one, write metrics.json and the report."""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from torch import nn

from edgecompress.core.evaluate import evaluate_onnx
from edgecompress.core.measure.artifact import artifact_bytes
from edgecompress.core.measure.macs import count_macs
from edgecompress.core.measure.params import count_nonzero_params, count_params
from edgecompress.core.models.checkpoint import save_model_file
from edgecompress.core.progress import console, detail
from edgecompress.core.seeding import check_seed, seed_everything
from edgecompress.core.tasks.checks import check_task
from edgecompress.core.tasks.inputs import describe
from edgecompress.core.tasks.task import Task
from edgecompress.delivery import pack
from edgecompress.onnx import export_model
from edgecompress.orchestration.pipeline.checkpoints import (
    CHECKPOINT_DIR,
    fingerprint,
    load_checkpoint,
    model_fingerprint,
    save_checkpoint,
)
from edgecompress.orchestration.pipeline.checks import check_stages, validate_recipe
from edgecompress.orchestration.pipeline.handlers import run_stage
from edgecompress.orchestration.pipeline.stages import StageConfig
from edgecompress.reporting.report import write_run_outputs
from edgecompress.runtime.feeds import feeds_for
from edgecompress.runtime.latency import Latency, measure_feed_latencies
from edgecompress.runtime.targets import DEFAULT_TARGET, check_target
from edgecompress.storage.rundir import owned_run_dir
from edgecompress.techniques.config import field_default
from edgecompress.techniques.stage import ModelState, StageContext

TORCH_MODEL_FILE = "model.safetensors"


@dataclass
class Measurement:
    """What one model (baseline, a stage, final) measured as, on its ONNX artifact."""

    name: str
    score: float
    artifact: str | None
    artifact_bytes: int
    params: int
    nonzero_params: int
    macs: int
    seconds: float = 0.0
    config: dict = field(default_factory=dict)
    details: dict = field(default_factory=dict)
    latency: dict[int, Latency] = field(default_factory=dict)
    storage: str | None = None  # the packed file (.ecz), for the baseline and the final model
    storage_bytes: int | None = None

    @classmethod
    def from_json(cls, data: dict) -> "Measurement":
        """Rebuild from `to_json` output (latency is measured again at the end of every run)."""
        fields = ("name", "score", "artifact", "artifact_bytes", "params", "nonzero_params", "macs", "seconds")
        bookkeeping = {*fields, "config", "latency_ms", "latency_iqr_ms", "fingerprint", "has_torch", "storage", "storage_bytes"}
        details = {k: v for k, v in data.items() if k not in bookkeeping}
        return cls(**{f: data[f] for f in fields}, config=data.get("config", {}), details=details)

    def to_json(self) -> dict:
        data = {
            "name": self.name,
            "score": self.score,
            "artifact": self.artifact,
            "artifact_bytes": self.artifact_bytes,
            "params": self.params,
            "nonzero_params": self.nonzero_params,
            "macs": self.macs,
            "storage": self.storage,
            "storage_bytes": self.storage_bytes,
            "latency_ms": {f"batch_{b}": lat.median_ms for b, lat in self.latency.items()},
            "latency_iqr_ms": {f"batch_{b}": [lat.p25_ms, lat.p75_ms] for b, lat in self.latency.items()},
            "seconds": round(self.seconds, 3),
        }
        if self.config:
            data["config"] = self.config
        data.update(self.details)
        return data


@dataclass
class RunResult:
    """Baseline, every stage and the final model, all measured in one run; `out_dir` holds the files."""

    task: Task
    out_dir: Path
    baseline: Measurement
    stages: list[Measurement]
    baseline_model: nn.Module
    final_torch_model: nn.Module  # the last torch form of the model (before quantization, if any)
    seed: int
    target: str = DEFAULT_TARGET  # the CPU class int8 artifacts were made exact for

    @property
    def final(self) -> Measurement:
        return self.stages[-1] if self.stages else self.baseline


def compress(
    model: nn.Module,
    task: Task,
    stages: Sequence[StageConfig],
    out_dir: str | Path,
    seed: int = 0,
    score_fns: dict[int, Callable] | None = None,
    arch: str | None = None,
    resume: bool = False,
    target: str = DEFAULT_TARGET,
    force: bool = False,
) -> RunResult:
    """Compress a trained `model` for `task` with `stages`; write artifacts and metrics to `out_dir`.

    The input model is not modified. Every score is measured by ONNX Runtime on the exported file.
    `score_fns` maps a stage number (1-based) to a Python score function for a `Custom` prune criterion
    (or pass the function itself: `Prune(criterion=fn)`).
    The last PyTorch form of the model is saved as `model.safetensors` (weights and layer sizes, no pickle);
    with `arch` (a built-in name or module:function) `edgecompress.load_model` rebuilds it from that file alone
    (a module:function only when the user names it again or passes trust_code: docs/security.md).
    With `resume`, stages finished by an earlier run with the same model, task, seed and settings are loaded
    from `out_dir/checkpoints` instead of recomputed; the result is the same as an uninterrupted run.
    `target` is the CPU class the int8 artifact must compute exactly on (`runtime/targets.py`: portable,
    auto, x86-avx2, x86-vnni, arm64); every int8 artifact is checked for it before it is measured.
    A directory holding an earlier run is refused unless `resume` (continue it) or `force` (replace it);
    files edgecompress did not write are never deleted (see `rundir.owned_run_dir`).

    >>> result = compress(model, task, default_recipe(), "runs/mine")  # doctest: +SKIP
    >>> result.final.score, result.final.artifact_bytes  # doctest: +SKIP
    """
    validate_recipe(stages)
    check_seed(seed)
    check_target(target)
    check_task(model, task)
    check_stages(model, stages, has_data=task.train_loader is not None, has_labels=task.labels, task_name=task.name)
    score_fns = score_fns or {}
    with owned_run_dir(out_dir, "run", resume=resume, force=force) as out:
        return _run_stages(model, task, stages, out, seed, score_fns, arch, resume, target)


def _run_stages(model, task, stages, out: Path, seed, score_fns, arch, resume, target) -> RunResult:
    seed_everything(seed)
    example_input = task.example_input()
    baseline_model = copy.deepcopy(model).eval()

    fp = fingerprint("baseline", task.name, seed, describe(example_input), model_fingerprint(baseline_model))
    state = _torch_state(baseline_model, example_input)
    restored = _load_stage(out, "00-baseline", fp, baseline_model, resume)
    baseline = restored[0] if restored else None
    if baseline is None:
        start = time.perf_counter()
        baseline = _measure_artifact("baseline", state, task, example_input, out, "baseline.onnx", start)
        save_checkpoint(out, "00-baseline", fp, baseline.to_json(), None)
        detail(measured_line("baseline", baseline))
    state.onnx_path = out / "baseline.onnx"

    measurements: list[Measurement] = []
    last_torch_model = baseline_model
    for index, config in enumerate(stages, start=1):
        relative = "final.onnx" if index == len(stages) else f"stages/{index:02d}-{config.name}.onnx"
        label = f"stage {index}/{len(stages)} ({config.name})"
        key = f"{index:02d}-{config.name}"
        fp = fingerprint(fp, index, config.model_dump(mode="json"), relative, *([target] if config.leaves_torch else []))
        restored = _load_stage(out, key, fp, baseline_model, resume)
        if restored is not None:
            measurement, state = restored
            console.log(f"{label}: resumed from {CHECKPOINT_DIR}/{key}")
        else:
            resume = False  # everything after a recomputed stage is recomputed too
            start = time.perf_counter()
            console.log(f"{label}: running")
            seed_everything(seed + index)
            ctx = StageContext(task, example_input, baseline_model, out / relative, label, seed + index, score_fns.get(index), target)
            state = run_stage(config, state, ctx)  # what `apply` runs; here with export, measuring and a checkpoint
            if state.torch_model is not None:
                state = dataclasses.replace(_torch_state(state.torch_model, example_input), details=state.details)
            measurement = _measure_artifact(config.name, state, task, example_input, out, relative, start)
            measurement.config = config.model_dump(mode="json")
            measurement.details = {**state.details, **measurement.details}
            save_checkpoint(out, key, fp, measurement.to_json(), state.torch_model)
            console.log(f"{label}: {task.metric.name} {measurement.score:.4g}, {measurement.artifact_bytes:,} bytes")
            detail(measured_line(label, measurement, config))
        if state.torch_model is not None:
            last_torch_model = state.torch_model
        measurements.append(measurement)

    console.log("timing every artifact in ONNX Runtime (one thread, interleaved)")
    everything = [baseline, *measurements]
    paths = [out / m.artifact for m in everything]
    latencies = measure_feed_latencies(paths, latency_feeds(task, example_input, paths[0], seed))
    for measurement, latency in zip(everything, latencies):
        measurement.latency = latency

    for measurement in (baseline, measurements[-1] if measurements else baseline):
        packed = pack(out / measurement.artifact, out / Path(measurement.artifact).with_suffix(".ecz").name)
        measurement.storage = packed.path.name
        measurement.storage_bytes = packed.path.stat().st_size

    result = RunResult(task, out, baseline, measurements, baseline_model, last_torch_model, seed, target)
    if task.ship is not None:
        for name, numbers in (task.ship(out / result.final.artifact, out) or {}).items():
            getattr(result, name).details.update(numbers)
    save_model_file(last_torch_model, out / TORCH_MODEL_FILE, arch=arch)
    write_run_outputs(result, example_input)
    return result


def measured_line(label: str, measurement: Measurement, config: StageConfig | None = None) -> str:
    """What `--verbose` adds after a stage: what the model holds and cost to make, the settings that differ
    from the defaults (and a quantize stage's mode, whatever it is), and which details metrics.json has on it."""
    line = (f"{label}: {measurement.params:,} params ({measurement.nonzero_params:,} nonzero), {measurement.macs:,} MACs, "
            f"{measurement.artifact} {measurement.artifact_bytes:,} B, {measurement.seconds:.1f} s")
    if config is not None:
        values = config.model_dump(mode="json")
        changed = {k: v for k, v in values.items() if k == "mode" or (k != "stage" and getattr(config, k) != field_default(config, k))}
        shown = ", ".join(f"{k} {v if isinstance(v, str) else json.dumps(v)}" for k, v in changed.items())
        line += f"; settings: {shown or 'the defaults'}"
    if measurement.details:
        line += f"; in metrics.json: {', '.join(measurement.details)}"
    return line


def latency_feeds(task: Task, example_input, onnx_path: Path, seed: int) -> dict:
    """Batch size -> ONNX Runtime feeds to time: the task's own inputs (e.g. real token batches), else random
    normal samples of the example input's shape."""
    if task.latency_inputs is not None:
        import onnx

        names = [i.name for i in onnx.load(str(onnx_path), load_external_data=False).graph.input]
        return {batch: feeds_for(task.latency_inputs(batch), names) for batch in task.latency_batches}
    rng = np.random.default_rng(seed)
    sample_shape = tuple(example_input.shape[1:])
    return {batch: rng.standard_normal((batch, *sample_shape), dtype=np.float32) for batch in task.latency_batches}


def _load_stage(out, key, fp, template, resume) -> tuple[Measurement, ModelState] | None:
    loaded = load_checkpoint(out, key, fp, template) if resume else None
    if loaded is None:
        return None
    record, torch_model = loaded
    try:
        measurement = Measurement.from_json(record)
    except (KeyError, TypeError, ValueError):  # a damaged record: compute the stage again
        return None
    state = ModelState(torch_model, out / record["artifact"], measurement.params, measurement.nonzero_params, measurement.macs)
    return measurement, state


def _torch_state(model: nn.Module, example_input) -> ModelState:
    macs, _ = count_macs(model, example_input)
    return ModelState(model, None, count_params(model), count_nonzero_params(model), macs)


def _measure_artifact(name, state: ModelState, task, example_input, out: Path, relative: str, start: float) -> Measurement:
    path = out / relative
    if state.onnx_path is None:
        export_model(state.torch_model, example_input, path, task)
        state.onnx_path = path
    score = evaluate_onnx(path, task)
    return Measurement(
        name=name,
        score=score.value,
        artifact=relative,
        artifact_bytes=artifact_bytes(path),
        params=state.params,
        nonzero_params=state.nonzero_params,
        macs=state.macs,
        seconds=time.perf_counter() - start,
        details=dict(score.details),
    )
