"""Running a model on calibration data in the forms users have, for the data-driven criteria (Taylor, Wanda).

How a model is called depends on the model, not on the criterion: a CNN takes one tensor, a Hugging Face
encoder takes keyword arguments (`input_ids`, `attention_mask`). So the criteria never call the model
themselves; they call `forward`, which accepts, per batch:

- `(inputs, targets)`, as a DataLoader gives (or `(inputs,)`): `inputs` a tensor -> `model(inputs)`, a
  tuple or list -> `model(*inputs)`, a mapping -> `model(**inputs)`;
- a mapping alone -> `model(**batch)`, no targets (e.g. `edgecompress.families.encoder.batches.token_batches`);

numpy arrays become tensors. Instead of batches, `batches` may be a callable `run(model)` that does the
forward passes itself (only for criteria that need no loss, i.e. Wanda).

>>> feeds = token_batches(tokenizer, sentences, 32)  # doctest: +SKIP
>>> prune_model(encoder, Prune(criterion="wanda", pattern="unstructured"), None, train, batches=feeds)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Iterable, Iterator

import numpy as np
import torch
from torch import nn

from edgecompress.core.errors import UserError

NO_DATA = "prune.criterion: this criterion needs data; give the task a training loader (or calibration batches)"


def take_batches(batches, limit: int) -> Iterator:
    """The first `limit` batches; a criterion that needs data and has none is a user error."""
    if batches is None:
        raise UserError(NO_DATA)
    if callable(batches) and not isinstance(batches, Iterable):
        raise UserError("prune.criterion: taylor needs (inputs, targets) batches and a loss, not a calibration function")
    for index, batch in enumerate(batches):
        if index >= limit:
            break
        yield batch


def run_calibration(model: nn.Module, batches, limit: int) -> None:
    """Forward passes over up to `limit` batches (or one call of a calibration function), without gradients."""
    with torch.no_grad():
        if callable(batches) and not isinstance(batches, Iterable):
            batches(model)
            return
        for batch in take_batches(batches, limit):
            inputs, _ = split_batch(batch)
            forward(model, inputs)


def batch_loss(model: nn.Module, batch, loss_fn) -> torch.Tensor:
    """The task loss on one (inputs, targets) batch, for gradient-based criteria."""
    inputs, targets = split_batch(batch)
    if targets is None or loss_fn is None:
        raise UserError("prune.criterion: taylor needs (inputs, targets) batches and the task's loss; these batches have no targets")
    return loss_fn(forward(model, inputs), _tensor(targets))


def split_batch(batch) -> tuple[Any, Any]:
    """(model inputs, targets or None) of one batch in any of the forms in the module docstring."""
    if isinstance(batch, Mapping):
        return batch, None
    if isinstance(batch, (tuple, list)) and len(batch) in (1, 2):  # a TensorDataset of inputs alone gives [x]
        return batch[0], batch[1] if len(batch) == 2 else None
    if isinstance(batch, (torch.Tensor, np.ndarray)):
        return batch, None
    raise UserError(
        f"prune.calibration: a batch is {type(batch).__name__}; give (inputs, targets) pairs, "
        "keyword-argument dicts, or tensors"
    )


def forward(model: nn.Module, inputs):
    """Call `model` on one batch's inputs: a tensor, a tuple of positional inputs, or a mapping of keyword inputs."""
    if isinstance(inputs, Mapping):
        return model(**{name: _tensor(value) for name, value in inputs.items()})
    if isinstance(inputs, (tuple, list)):
        return model(*(_tensor(value) for value in inputs))
    return model(_tensor(inputs))


def _tensor(value):
    return torch.from_numpy(value) if isinstance(value, np.ndarray) else value
