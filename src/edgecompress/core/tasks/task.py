"""The user-facing description of what a model is for: its data, its loss and how it is scored."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from edgecompress.core.tasks.inputs import Inputs, first_samples

Batch = tuple[torch.Tensor, torch.Tensor]

GENERATIONS_FILE = "generations.json"  # a ship step's side-by-side continuations [{"prompt", name: text}]; the report shows them


@dataclass(frozen=True)
class Metric:
    """A score over a whole evaluation set: `fn(outputs, targets) -> float`, outputs concatenated over batches.

    >>> top1 = Metric("accuracy", lambda out, y: 100.0 * (out.argmax(1) == y).float().mean().item(), unit="%")
    """

    name: str
    fn: Callable[[torch.Tensor, torch.Tensor], float]
    higher_is_better: bool = True
    unit: str = ""
    details: Callable[[torch.Tensor, torch.Tensor], dict] | None = None  # more numbers for metrics.json, same outputs
    # per batch (outputs, targets) -> small per-sample numbers, gathered instead of the outputs: a language
    # model's logits (tokens x vocabulary) are too large to keep for a whole evaluation set; `fn` and
    # `details` then receive these numbers, and an empty tensor as targets
    per_batch: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None

    def __call__(self, outputs: torch.Tensor, targets: torch.Tensor) -> float:
        return float(self.fn(outputs, targets))


@dataclass
class Task:
    """Everything a compression run needs besides the model.

    Loaders yield `(inputs, targets)` batches; inputs are one tensor, or a dict of named tensors (a tokenized
    batch) passed to the model as keyword arguments. `train_loader` feeds fine-tuning and calibration;
    `eval_loader` is only used to score models, never to fit them or to make choices; choices (e.g. which
    layers stay in float) use `val_loader` when given, else the training data.

    A model family (e.g. sentence encoders, `families/encoder/task.py`) is a task that also says how its
    model is exported (`export`), which inputs its latency is timed on (`latency_inputs`, `latency_batches`),
    and which files ship beside the artifact (`ship`, e.g. a tokenizer). The defaults suit one float input
    with a batch axis.
    """

    name: str
    train_loader: Iterable[Batch]
    eval_loader: Iterable[Batch]
    metric: Metric
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = field(default=F.cross_entropy)
    val_loader: Iterable[Batch] | None = None
    export: Callable[[nn.Module, Path], Path] | None = None  # default: torch.onnx with a dynamic batch axis
    latency_inputs: Callable[[int], Inputs] | None = None  # batch size -> inputs; default: random normal
    latency_batches: tuple[int, ...] = (1, 256)
    # (final artifact, run folder): write what it needs beside it; it may return more numbers for metrics.json,
    # {"baseline": {...}, "final": {...}}, measured on the files (a decoder's time to first token)
    ship: Callable[[Path, Path], dict[str, dict] | None] | None = None
    labels: bool = True  # False: the targets are no labels (an encoder's), so stages that train on them are refused
    # the outputs' dimension of class scores (logits): 1 for [batch, classes], -1 for a language model's
    # [batch, tokens, vocabulary]; None: the outputs are no class scores (an embedding), so distillation
    # matches them by cosine, not by KL divergence
    class_dim: int | None = 1

    def scored_on(self, loader: Iterable[Batch]) -> "Task":
        """The same task with `loader` as the data its scores are computed on (e.g. validation data)."""
        return dataclasses.replace(self, eval_loader=loader)

    def example_input(self) -> Inputs:
        """One sample (batch of 1) from the evaluation data: fixes the input shape for export and MACs."""
        inputs, _ = next(iter(self.eval_loader))
        return first_samples(inputs, 1)
