"""Structured removal in transformer layers: FFN neurons and attention heads, physically sliced out
(`structured.py`; handlers in `stage.py`). Only the configs are named here: importing them must not import
torch (the recipe schema is built from them)."""

from edgecompress.techniques.transformer.config import RemoveFfn, RemoveHeads

__all__ = ["RemoveFfn", "RemoveHeads"]
