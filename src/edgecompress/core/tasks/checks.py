"""Checks of a model and its task before any work: clear errors instead of garbage hours later."""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from edgecompress.core.errors import UserError, first_line
from edgecompress.core.tasks.inputs import Inputs, call_model, describe, first_samples, float_tensors, repeat_sample
from edgecompress.core.tasks.task import Task


def check_task(model: nn.Module, task: Task) -> None:
    """The model's weights are finite; each loader yields (inputs, targets) with finite float inputs the
    model accepts. Only the first batch of each loader is read here; later batches are checked as they
    stream (`FiniteBatches`). A single-class data set is accepted: the metric is computed as usual.
    torch's random state is left as it was: reading a shuffled loader draws from it, and the training that
    follows must see the same numbers whether or not it was checked first."""
    with torch.random.fork_rng(devices=[]):
        _check_task(model, task)


def _check_task(model: nn.Module, task: Task) -> None:
    bad = [name for name, p in model.state_dict().items() if p.is_floating_point() and not torch.isfinite(p).all()]
    if bad:
        raise UserError(f"model: tensor {bad[0]!r} holds NaN or Inf values; fix or retrain the model first")
    shapes = {}
    for role, loader in (("train", task.train_loader), ("eval", task.eval_loader), ("validation", task.val_loader)):
        if loader is None:
            continue
        inputs, targets = _first_batch(loader, role)
        if isinstance(inputs, Mapping):
            if not inputs or not all(isinstance(value, torch.Tensor) for value in inputs.values()):
                raise UserError(f"data: {role} inputs given by name must be a non-empty dict of tensors")
        elif not isinstance(inputs, torch.Tensor) or not inputs.is_floating_point():
            kind = inputs.dtype if isinstance(inputs, torch.Tensor) else type(inputs).__name__
            raise UserError(f"data: {role} inputs must be a float tensor (or a dict of named tensors), got {kind}")
        else:
            shapes[role] = tuple(inputs.shape[1:])  # named inputs (token batches) may differ in length per batch
        if not all(torch.isfinite(value).all() for value in float_tensors(inputs)):
            raise UserError(f"data: the first {role} batch holds NaN or Inf inputs; clean the data first")
        if role == "eval":
            _check_model_runs(model, first_samples(inputs, 2))
    if len(set(shapes.values())) > 1:
        listed = ", ".join(f"{role} {'x'.join(map(str, s))}" for role, s in shapes.items())
        raise UserError(f"data: the loaders' sample shapes differ ({listed}); they must match the model input")


class FiniteBatches:
    """A loader whose batches are checked as they stream: NaN or Inf inputs stop the run naming the batch.

    `check_task` sees only each loader's first batch; calibration (pruning scores, int8 ranges) would
    otherwise turn a bad later batch into silently wrong masks or ranges. Iterable again and again, like
    the loader it wraps.

    >>> list(FiniteBatches([(torch.ones(1), 0)], "calibration"))
    [(tensor([1.]), 0)]
    """

    def __init__(self, loader, field: str, data: str = "training"):
        self.loader, self.field, self.data = loader, field, data

    def __iter__(self):
        for number, batch in enumerate(self.loader, 1):
            inputs = batch[0] if isinstance(batch, (tuple, list)) else batch
            if isinstance(inputs, (torch.Tensor, Mapping)) and not all(torch.isfinite(v).all() for v in float_tensors(inputs)):
                raise UserError(f"{self.field}: batch {number} of the {self.data} data holds NaN or Inf inputs; clean the data first")
            yield batch

    def __len__(self):
        return len(self.loader)


def _first_batch(loader, role: str):
    try:
        batch = next(iter(loader))
    except StopIteration:
        raise UserError(f"data: the {role} loader is empty; give it at least one batch") from None
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise UserError(f"data: {role} batches must be (inputs, targets) pairs, got {type(batch).__name__}")
    return batch


BATCH_FIX = "make forward() follow x.shape[0] (no fixed batch in view/reshape or initial states)"


def _check_model_runs(model: nn.Module, inputs: Inputs) -> None:
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            try:
                call_model(model, first_samples(inputs, 1))
            except Exception as exc:
                first = first_line(exc)
                shape = describe(first_samples(inputs, 1)) if isinstance(inputs, Mapping) else "x".join(map(str, inputs.shape[1:]))
                raise UserError(f"data: samples of shape {shape} do not fit {type(model).__name__}: {first}") from None
            _check_batch_axis(model, first_samples(inputs, 1))
    finally:
        model.train(was_training)


def _check_batch_axis(model: nn.Module, sample: Inputs) -> None:
    """Axis 0 is the batch, of any size: the exported file is scored in batches (of 256) in ONNX Runtime,
    so a model that only runs on one sample, or that folds the batch into another axis, is refused here,
    before any training, rather than after it at the first scoring."""
    name = type(model).__name__
    for size in (1, 3):
        batch = repeat_sample(sample, size)
        try:
            output = call_model(model, batch)
        except Exception as exc:
            raise UserError(f"model: {name} fails on a batch of {size} samples ({first_line(exc)}); {BATCH_FIX}") from None
        if isinstance(output, torch.Tensor) and (output.dim() == 0 or output.shape[0] != size):
            got = "x".join(map(str, output.shape)) or "a scalar"
            raise UserError(f"model: {name} returns {got} for a batch of {size}; axis 0 of its output must be the batch: {BATCH_FIX}")
