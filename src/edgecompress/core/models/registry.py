"""What a model spec names: a built-in model (each with the example input shape it expects), or a saved file.

Only names and strings here, no torch: recipes are checked against these names before anything is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from edgecompress.core.lazy import imported

if TYPE_CHECKING:
    from torch import nn

WEIGHT_SUFFIXES = {".pt", ".pth", ".bin", ".ckpt", ".safetensors"}  # a model spec ending so is a saved file


@dataclass(frozen=True)
class BuiltinModel:
    factory: str  # "module:class", imported when the model is built
    input_shape: tuple[int, ...]
    description: str

    def build(self) -> nn.Module:
        return imported(self.factory)()


BUILTIN_MODELS: dict[str, BuiltinModel] = {
    "digits-cnn": BuiltinModel("edgecompress.core.models.digits:DigitsCNN", (1, 1, 8, 8), "LeNet-style CNN for 8x8 digits, 53,002 params"),
    "digits-mlp": BuiltinModel("edgecompress.core.models.digits:DigitsMLP", (1, 1, 8, 8), "LeNet-300-100-shaped MLP for 8x8 digits, 50,610 params"),
}
