"""Distillation: train a compressed model to give the uncompressed model's outputs again, without labels.

`loop.py` trains, `stage.py` is the stage's handler; only the config is named here, as importing it must not
import torch (the recipe schema is built from it).
"""

from edgecompress.techniques.distill.config import Distill

__all__ = ["Distill"]
