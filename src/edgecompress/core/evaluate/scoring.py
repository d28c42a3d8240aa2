"""Score = the task metric over the whole evaluation set, computed on the model that ships."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from edgecompress.core.errors import RunFailure
from edgecompress.core.tasks.checks import FiniteBatches
from edgecompress.core.tasks.inputs import call_model
from edgecompress.core.tasks.task import Task
from edgecompress.runtime.feeds import feeds_for
from edgecompress.runtime.sessions import make_session


@dataclass(frozen=True)
class Score:
    """The task metric, and the metric's further numbers (`Metric.details`) on the same outputs."""

    value: float
    details: dict = field(default_factory=dict)


def score_torch(model: nn.Module, task: Task) -> float:
    """Metric of a torch model in eval mode."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return _score(lambda x: call_model(model, x), task).value
    finally:
        model.train(was_training)


def score_onnx(path: str | Path, task: Task) -> float:
    """Metric of an ONNX file executed by ONNX Runtime (one thread, as it is timed)."""
    return evaluate_onnx(path, task).value


def evaluate_onnx(path: str | Path, task: Task) -> Score:
    """Metric and its details for an ONNX file executed by ONNX Runtime (one thread, as it is timed)."""
    session = make_session(path)
    names = [i.name for i in session.get_inputs()]

    def predict(x) -> torch.Tensor:
        return torch.from_numpy(session.run(None, feeds_for(x, names))[0])

    return _score(predict, task)


def _score(predict: Callable, task: Task) -> Score:
    """The metric over every evaluation batch; each batch's inputs and outputs are checked for NaN and Inf, so
    a bad batch anywhere stops the run instead of becoming a score."""
    outputs, targets = [], []
    for number, (inputs, target) in enumerate(FiniteBatches(task.eval_loader, "evaluate", "evaluation"), 1):
        predicted = predict(inputs)
        if predicted.is_floating_point() and not torch.isfinite(predicted).all():
            raise RunFailure(f"evaluate: the model's outputs on evaluation batch {number} hold NaN or Inf")
        if task.metric.per_batch is not None:
            predicted, target = task.metric.per_batch(predicted, target), torch.empty(0)
        outputs.append(predicted)
        targets.append(target)
    if not outputs:
        raise RunFailure(f"evaluate: the evaluation data of task {task.name!r} is empty")
    try:
        value = task.metric(torch.cat(outputs), torch.cat(targets))
    except Exception as exc:
        raise RunFailure(f"evaluate: metric {task.metric.name!r} raised {type(exc).__name__}: {exc}") from exc
    if not np.isfinite(value):
        raise RunFailure(f"evaluate: metric {task.metric.name!r} returned {value}, not a finite number")
    details = task.metric.details(torch.cat(outputs), torch.cat(targets)) if task.metric.details else {}
    return Score(value, details)
