"""The distill stage's handler (its config: `config.py`): recover what pruning or a low-bit grid cost by
matching the uncompressed model's outputs."""

from __future__ import annotations

import copy
from fnmatch import fnmatch

from edgecompress.core.errors import UserError
from edgecompress.core.tasks.checks import FiniteBatches
from edgecompress.techniques.distill.config import Distill
from edgecompress.techniques.distill.loop import distill
from edgecompress.techniques.stage import ModelState, StageContext


def distill_stage(config: Distill, state: ModelState, ctx: StageContext) -> ModelState:
    task = ctx.require_task("distill")
    student = copy.deepcopy(state.torch_model)
    frozen = [p for name, p in student.named_parameters() if any(fnmatch(name, pattern) for pattern in config.frozen)]
    if config.frozen and not frozen:
        names = ", ".join(name for name, _ in list(student.named_parameters())[:3])
        raise UserError(f"distill.frozen: no parameter name matches {', '.join(config.frozen)}; names look like {names}")
    trainable = {p: p.requires_grad for p in frozen}
    for parameter in frozen:
        parameter.requires_grad_(False)
    inputs = [batch[0] for batch in FiniteBatches(task.train_loader, "distill")]
    loss = config.loss or ("cosine" if task.class_dim is None else "kl")
    try:
        report = distill(
            student, ctx.teacher, inputs, seconds=config.seconds, epochs=config.epochs, lr=config.lr, loss=loss,
            seed=ctx.seed, dropout=config.dropout, description=ctx.label, class_dim=-1 if task.class_dim is None else task.class_dim,
        )
    finally:
        for parameter, was in trainable.items():
            parameter.requires_grad_(was)
    return ModelState(student, details={"distill": report.to_json()})
