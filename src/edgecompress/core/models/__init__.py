"""Models: the built-in architectures and the loaders for a user's own model."""

from edgecompress.core.models.digits import DigitsCNN, DigitsMLP
from edgecompress.core.models.loading import LoadedModel, load_model
from edgecompress.core.models.registry import BUILTIN_MODELS

__all__ = ["DigitsCNN", "DigitsMLP", "LoadedModel", "load_model", "BUILTIN_MODELS"]
