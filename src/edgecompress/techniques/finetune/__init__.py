"""Fine-tuning: train the compressed model on the task's data to recover its metric (handler: `stage.py`).

Only the config is named here: importing it must not import torch (the recipe schema is built from it).
"""

from edgecompress.techniques.finetune.config import Finetune

__all__ = ["Finetune"]
