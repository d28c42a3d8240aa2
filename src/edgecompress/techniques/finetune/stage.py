"""The finetune stage's handler (its config: `config.py`): train the compressed model on the task's data to
recover its metric."""

from __future__ import annotations

import copy

from edgecompress.core.train import train_epochs
from edgecompress.techniques.finetune.config import Finetune
from edgecompress.techniques.stage import ModelState, StageContext


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
