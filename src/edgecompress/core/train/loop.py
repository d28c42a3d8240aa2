"""One supervised training loop, used for the baseline and for fine-tuning after compression."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from edgecompress.core.errors import RunFailure, UserError
from edgecompress.core.progress import progress_bar
from edgecompress.core.tasks.inputs import call_model
from edgecompress.core.tasks.task import Task
from edgecompress.core.train.distill import distillation_loss


def train_epochs(
    model: nn.Module,
    task: Task,
    epochs: int,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    description: str = "train",
    teacher: nn.Module | None = None,
    distill_weight: float = 0.0,
    temperature: float = 4.0,
    callbacks: Sequence = (),
) -> list[float]:
    """Train `model` in place with Adam and a cosine learning-rate decay; return the mean loss per epoch.

    With a `teacher`, the loss is (1 - w) * task loss + w * distillation loss, w = `distill_weight`.
    `callbacks` may define `after_backward(step)` (gradients present) and `after_step(step)` (weights updated);
    pruning schedules use them to accumulate scores and update masks during training.

    >>> losses = train_epochs(model, task, epochs=3)  # doctest: +SKIP
    """
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    steps = epochs * len(task.train_loader)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, steps))
    losses: list[float] = []
    step = 0
    model.train()
    if teacher is not None:
        teacher.eval()
    with progress_bar() as bar:
        job = bar.add_task(description, total=epochs, status="")
        for _ in range(epochs):
            total, batches = 0.0, 0
            for number, (inputs, targets) in enumerate(task.train_loader, 1):
                optimizer.zero_grad(set_to_none=True)
                outputs = call_model(model, inputs)
                loss = task.loss_fn(outputs, targets)
                if teacher is not None and distill_weight > 0:
                    with torch.no_grad():
                        teacher_outputs = call_model(teacher, inputs)
                    soft = distillation_loss(outputs, teacher_outputs, temperature, 1 if task.class_dim is None else task.class_dim)
                    loss = (1 - distill_weight) * loss + distill_weight * soft
                if not torch.isfinite(loss):
                    if isinstance(inputs, torch.Tensor) and not torch.isfinite(inputs).all():  # the data, not the lr
                        raise UserError(f"{description}: batch {number} of the training data holds NaN or Inf inputs; clean the data first")
                    raise RunFailure(f"{description}: loss became {loss.item()}; lower the learning rate (lr={lr})")
                loss.backward()
                for callback in callbacks:
                    getattr(callback, "after_backward", _noop)(step)
                optimizer.step()
                schedule.step()
                step += 1
                for callback in callbacks:
                    getattr(callback, "after_step", _noop)(step)
                total += loss.item()
                batches += 1
            losses.append(total / max(1, batches))
            bar.update(job, advance=1, status=f"loss {losses[-1]:.4f}")
    model.eval()
    return losses


def _noop(step: int) -> None:
    pass
