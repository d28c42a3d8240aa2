"""Model inputs as ONNX Runtime feeds: a loader's (inputs, targets) batches keyed by the model's input name."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import onnx
import torch


def input_feeds(batches: Iterable, model: str | Path) -> Iterator[dict[str, np.ndarray]]:
    """Each batch's inputs (the first element of an (inputs, targets) pair) as {input name: float32 array}.

    >>> next(input_feeds(task.train_loader, "final.onnx"))["input"].shape  # doctest: +SKIP
    (32, 1, 8, 8)
    """
    name = onnx.load(str(model), load_external_data=False).graph.input[0].name
    for batch in batches:
        yield {name: batch_inputs(batch).astype(np.float32, copy=False)}


def batch_inputs(batch) -> np.ndarray:
    """The inputs of one batch: the batch itself if it is an array, else the first of (inputs, targets)."""
    inputs = batch if isinstance(batch, (torch.Tensor, np.ndarray)) else batch[0]
    return inputs.numpy() if isinstance(inputs, torch.Tensor) else np.asarray(inputs)
