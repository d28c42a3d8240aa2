"""The distill stage: recover what pruning or a low-bit grid cost by matching the uncompressed model's outputs."""

from __future__ import annotations

import copy
from fnmatch import fnmatch
from typing import Literal, Optional

from pydantic import Field

from edgecompress.core.errors import UserError
from edgecompress.core.tasks.checks import FiniteBatches
from edgecompress.techniques.distill.loop import distill
from edgecompress.techniques.stage import ModelState, StageConfig, StageContext


class Distill(StageConfig):
    """Train the model to reproduce the uncompressed model's outputs on the task's training inputs (labels are
    not read, so it works for tasks without them, e.g. sentence encoders).

    AdamW with warm-up and linear decay over `epochs` passes or `seconds`, whichever ends first (a time budget
    makes the result depend on the machine's speed; the epochs alone keep it reproducible). Parameters whose
    names match a `frozen` pattern stay as they are (e.g. a large word-embedding table whose rows a batch
    barely touches). Pruning masks and fake-quantization grids stay in force while it trains.

    >>> Distill(seconds=240, epochs=8, frozen=("*word_embeddings*",)).loss
    'cosine'
    """

    stage: Literal["distill"] = "distill"
    epochs: int = Field(3, ge=1, le=10_000, description="at most this many passes over the training inputs")
    seconds: Optional[float] = Field(None, gt=0.0, le=7 * 24 * 3600, description="time budget (none: the epochs decide)")
    lr: float = Field(2e-4, gt=0.0, le=10.0)
    loss: Literal["cosine", "mse"] = Field("cosine", description="1 - cosine to the teacher's output, or squared error")
    frozen: tuple[str, ...] = Field((), description="fnmatch patterns of parameter names left unchanged")
    dropout: bool = Field(False, description="train with the model's dropout on (off: match the teacher's deterministic output)")


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
    try:
        report = distill(
            student, ctx.teacher, inputs, seconds=config.seconds, epochs=config.epochs, lr=config.lr, loss=config.loss,
            seed=ctx.seed, dropout=config.dropout, description=ctx.label,
        )
    finally:
        for parameter, was in trainable.items():
            parameter.requires_grad_(was)
    return ModelState(student, details={"distill": report.to_json()})
