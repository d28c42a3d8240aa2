"""`apply`: one stage config on one model, in the caller's own code: no output directory, lock, export or report.

`compress` runs the same handlers (`handlers.run_stage`) in a loop and adds exporting, measuring,
checkpoints and the report around them.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Callable, Iterable

import torch
from torch import nn

from edgecompress.core.errors import UserError
from edgecompress.core.tasks.task import Metric, Task
from edgecompress.orchestration.pipeline.handlers import HANDLERS, run_stage
from edgecompress.runtime.targets import DEFAULT_TARGET, check_target
from edgecompress.techniques.stage import ModelState, StageConfig, StageContext


def apply(
    model: nn.Module | str | Path,
    config: StageConfig,
    data: Task | Iterable | None = None,
    *,
    out: str | Path | None = None,
    example_input: torch.Tensor | None = None,
    teacher: nn.Module | None = None,
    score_fn: Callable | None = None,
    seed: int = 0,
    target: str = DEFAULT_TARGET,
) -> nn.Module | Path:
    """Apply one stage config to `model` and return the result; `model` itself is not modified.

    - torch stages (`Prune`, `Finetune`, `Factorize`, `Qat`) return the transformed module. Pruning masks
      stay on it (parametrizations), so training it further keeps pruned weights at zero.
    - ONNX stages (`QuantizeStatic`, `QuantizeDynamic`, `CastFp16`, `QuantizeInt4`, or `Quantize(mode=...)`)
      write the artifact to `out` and return its path; `model` is an .onnx file or a module (exported first).

    `data` is a `Task`, or a loader of (inputs, targets) batches taken as classification data (cross-entropy
    loss, accuracy); stages that calibrate or train need it, one-shot magnitude pruning and factorizing do
    not. `example_input` (one batch) traces the model for channel removal and export; by default the first
    batch of `data`. `teacher` is the model distillation learns from (default: `model` as given); `score_fn`
    the Python function of a `Custom` criterion; `target` the CPU class int8 must be exact on.

    >>> import edgecompress as ec
    >>> pruned = ec.apply(model, ec.Prune(pattern=ec.NM(2, 4), criterion=ec.Wanda()), train_loader)  # doctest: +SKIP
    >>> ec.apply("model.onnx", ec.QuantizeDynamic(), train_loader, out="model-int8.onnx")  # doctest: +SKIP
    PosixPath('model-int8.onnx')
    """
    if type(config) not in HANDLERS:
        known = ", ".join(sorted(c.__name__ for c in HANDLERS))
        raise UserError(f"apply: config must be a stage config ({known}), got {type(config).__name__}")
    check_target(target)
    task = _as_task(data)
    if example_input is None and task is not None:
        example_input = task.example_input()
    label = f"apply ({config.name})"
    if not config.leaves_torch:
        if not isinstance(model, nn.Module):
            raise UserError(f"apply: {type(config).__name__} works on a torch module; got {type(model).__name__}")
        teacher = teacher if teacher is not None else copy.deepcopy(model).eval()
        ctx = StageContext(task, example_input, teacher, None, label, seed, score_fn, target)
        return run_stage(config, ModelState(model), ctx).torch_model
    if out is None:
        raise UserError(f"apply: {type(config).__name__} writes an ONNX file; pass out= (its path)")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="edgecompress-apply-") as scratch:
        torch_model = model if isinstance(model, nn.Module) else None
        onnx_path = _onnx_file(model, example_input, Path(scratch), task)
        ctx = StageContext(task, example_input, teacher if teacher is not None else torch_model, out, label, seed, score_fn, target)
        return run_stage(config, ModelState(torch_model, onnx_path), ctx).onnx_path


def _as_task(data) -> Task | None:
    if data is None or isinstance(data, Task):
        return data
    accuracy = Metric("accuracy", lambda outputs, targets: 100.0 * (outputs.argmax(1) == targets).float().mean().item(), unit="%")
    return Task("apply", train_loader=data, eval_loader=data, metric=accuracy)


def _onnx_file(model, example_input, scratch: Path, task: Task | None) -> Path:
    if not isinstance(model, nn.Module):
        path = Path(model)
        if path.suffix != ".onnx" or not path.is_file():
            raise UserError(f"apply: model must be a torch module or an existing .onnx file, got {str(model)[:200]!r}")
        return path
    if example_input is None:
        raise UserError("apply: exporting the module needs example_input= (one batch) or data=")
    from edgecompress.onnx import export_model

    path = scratch / "model.onnx"
    export_model(copy.deepcopy(model).eval(), example_input, path, task)
    return path
