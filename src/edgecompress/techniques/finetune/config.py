"""The finetune stage's config (pydantic only: the recipe schema loads it without torch)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from edgecompress.techniques.config import StageConfig


class Finetune(StageConfig):
    """Train the compressed model on the task's training data to recover its metric.

    `distill` > 0 mixes in distillation from the uncompressed baseline (the teacher) with that weight.

    >>> Finetune(epochs=24, lr=2e-3, distill=0.5).epochs
    24
    """

    stage: Literal["finetune"] = "finetune"
    epochs: int = Field(24, ge=1, le=10_000)
    lr: float = Field(2e-3, gt=0.0, le=10.0)
    weight_decay: float = Field(0.0, ge=0.0, le=1.0, description="L2 penalty added to the gradients (Adam)")
    distill: float = Field(0.0, ge=0.0, le=1.0, description="weight of the distillation loss")
    temperature: float = Field(4.0, ge=0.1, le=100.0, description="softens both models' outputs in the distillation loss")

    @property
    def needs_labels(self) -> bool:
        return True
