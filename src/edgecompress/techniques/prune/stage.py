"""The prune stage's handler: the engine on a copy of the model, and which path each layer takes."""

from __future__ import annotations

import copy

from edgecompress.core.tasks.checks import FiniteBatches
from edgecompress.core.train import train_epochs
from edgecompress.techniques.prune.config import Prune
from edgecompress.techniques.prune.engine import prune_model
from edgecompress.techniques.prune.sparsity_paths import sparsity_paths
from edgecompress.techniques.stage import ModelState, StageContext


def prune_stage(config: Prune, state: ModelState, ctx: StageContext) -> ModelState:
    model = copy.deepcopy(state.torch_model)
    task = ctx.task

    def train(epochs: int, callbacks=()) -> None:
        train_epochs(
            model, ctx.require_task("prune (schedule iterative or gradual)"), epochs, lr=config.lr, description=ctx.label,
            callbacks=callbacks, teacher=ctx.teacher if config.distill > 0 else None, distill_weight=config.distill,
        )

    left: dict[str, str] = {}
    prune_model(
        model, config, ctx.example_input, train,
        batches=FiniteBatches(task.train_loader, "prune.calibration_batches") if task is not None else None,
        loss_fn=task.loss_fn if task is not None else None, seed=ctx.seed, score_fn=ctx.score_fn, left=left,
    )
    details = {"prune_paths": sparsity_paths(state.torch_model, model, config)}
    if left:
        details["left_unpruned"] = left  # selected, but left whole: the layer and why
    return ModelState(model, details=details)
