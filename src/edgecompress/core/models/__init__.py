"""Models: the built-in architectures and the loaders for a user's own model.

The names load on first use (`core/lazy.py`): the registry's names (`registry.py`) are read without torch.
"""

from edgecompress.core.lazy import lazy_exports

__all__ = ["DigitsCNN", "DigitsMLP", "LoadedModel", "load_model", "BUILTIN_MODELS"]
__getattr__, __dir__ = lazy_exports(__name__, {
    "DigitsCNN": "edgecompress.core.models.digits",
    "DigitsMLP": "edgecompress.core.models.digits",
    "LoadedModel": "edgecompress.core.models.loading",
    "load_model": "edgecompress.core.models.loading",
    "BUILTIN_MODELS": "edgecompress.core.models.registry",
})
