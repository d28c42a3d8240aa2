"""Models: the built-in architectures and the loaders for a user's own model."""

from edgecompress.models.digits import DigitsCNN, DigitsMLP
from edgecompress.models.loading import LoadedModel, load_model
from edgecompress.models.registry import BUILTIN_MODELS

__all__ = ["DigitsCNN", "DigitsMLP", "LoadedModel", "load_model", "BUILTIN_MODELS"]
