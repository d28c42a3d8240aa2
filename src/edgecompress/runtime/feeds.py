"""Model inputs as ONNX Runtime feeds: a loader's (inputs, targets) batches keyed by the model's input name."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator, Mapping

import numpy as np
import onnx
import torch


def input_feeds(batches: Iterable, model: str | Path) -> Iterator[dict[str, np.ndarray]]:
    """Each batch's inputs (the first element of an (inputs, targets) pair) as {input name: float32 array};
    named inputs (a dict, e.g. token ids and mask) keep their names and dtypes.

    >>> next(input_feeds(task.train_loader, "final.onnx"))["input"].shape  # doctest: +SKIP
    (32, 1, 8, 8)
    """
    names = [i.name for i in onnx.load(str(model), load_external_data=False).graph.input]
    for batch in batches:
        yield feeds_for(batch if isinstance(batch, (torch.Tensor, np.ndarray, Mapping)) else batch[0], names)


def feeds_for(inputs, input_names: list[str]) -> dict[str, np.ndarray]:
    """One batch's inputs as feeds: named inputs by their names (dtype kept: token ids stay int64), one
    tensor as the model's first input, in float32."""
    if isinstance(inputs, Mapping):
        return {name: _array(inputs[name]) for name in input_names if name in inputs}
    return {input_names[0]: _array(inputs).astype(np.float32, copy=False)}


def batch_inputs(batch) -> np.ndarray:
    """The inputs of one batch: the batch itself if it is an array, else the first of (inputs, targets)."""
    inputs = batch if isinstance(batch, (torch.Tensor, np.ndarray)) else batch[0]
    return _array(inputs)


def _array(value) -> np.ndarray:
    return value.numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
