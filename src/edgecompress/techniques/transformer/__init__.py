"""Structured removal in transformer layers: FFN neurons and attention heads, physically sliced out
(`structured.py`, `decoder_heads.py`), and whole layers (`depth.py`); handlers in `stage.py`. Only the configs
are named here: importing them must not import torch (the recipe schema is built from them)."""

from edgecompress.techniques.transformer.config import RemoveFfn, RemoveHeads, RemoveLayers

__all__ = ["RemoveFfn", "RemoveHeads", "RemoveLayers"]
