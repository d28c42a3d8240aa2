"""Code imported when first used, so that importing a package, or a light module inside it, does not load what
its heavy modules need (torch, ONNX Runtime, matplotlib): a package's exported names (PEP 562), and registries
whose entries name their code as "module:name" strings.

>>> __getattr__, __dir__ = lazy_exports(__name__, {"load_model": "edgecompress.core.models.loading"})  # doctest: +SKIP
>>> imported("edgecompress.core.sizes:parse_size")("20KB", field="size")
20000
"""

from __future__ import annotations

import importlib
import sys
from typing import Callable


def lazy_exports(package: str, names: dict[str, str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """The `__getattr__` and `__dir__` of `package`, for which `names` maps each exported name to its module."""

    def __getattr__(name: str):
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(names[name]), name)
        setattr(sys.modules[package], name, value)  # later lookups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted({*names, *getattr(sys.modules[package], "__all__", ())})

    return __getattr__, __dir__


def imported(spec: str):
    """The object a "package.module:name" string names (an entry of a registry of our own code), imported now."""
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)
