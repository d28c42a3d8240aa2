"""Built-in model names, each with the example input shape it expects."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import nn

from edgecompress.core.models.digits import DigitsCNN, DigitsMLP


@dataclass(frozen=True)
class BuiltinModel:
    factory: Callable[[], nn.Module]
    input_shape: tuple[int, ...]
    description: str


BUILTIN_MODELS: dict[str, BuiltinModel] = {
    "digits-cnn": BuiltinModel(DigitsCNN, (1, 1, 8, 8), "LeNet-style CNN for 8x8 digits, 53,002 params"),
    "digits-mlp": BuiltinModel(DigitsMLP, (1, 1, 8, 8), "LeNet-300-100-shaped MLP for 8x8 digits, 50,610 params"),
}
