"""Examine a model: per-layer table, saved-size check, and what must shrink to fit a target size."""

from edgecompress.inspect.layers import LayerRow, LayerTable, layer_table
from edgecompress.inspect.saved_size import SavedSizeCheck, check_saved_size
from edgecompress.inspect.target import TargetAdvice, advise_target_size

__all__ = [
    "LayerRow", "LayerTable", "layer_table",
    "SavedSizeCheck", "check_saved_size",
    "TargetAdvice", "advise_target_size",
]
