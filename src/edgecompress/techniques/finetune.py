"""The finetune stage: train the compressed model on the task's data to recover its metric."""

from __future__ import annotations

import copy
from typing import Literal

from pydantic import Field

from edgecompress.core.train import train_epochs
from edgecompress.techniques.stage import ModelState, StageConfig, StageContext


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


def finetune_stage(config: Finetune, state: ModelState, ctx: StageContext) -> ModelState:
    task = ctx.require_task("finetune")
    model = copy.deepcopy(state.torch_model)
    train_epochs(
        model,
        task,
        config.epochs,
        lr=config.lr,
        weight_decay=config.weight_decay,
        description=ctx.label,
        teacher=ctx.teacher if config.distill > 0 else None,
        distill_weight=config.distill,
        temperature=config.temperature,
    )
    return ModelState(model)
