"""Stage configs: small frozen objects that say what a stage does, validated when they are built.

A recipe is a list of these; the YAML recipe (a later issue) is just their serialized form. Each config type
maps to one handler in `pipeline.handlers`.
"""

from __future__ import annotations

from typing import Literal, Union

from pydantic import BaseModel, ConfigDict, Field


class StageConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    @property
    def name(self) -> str:
        return self.stage  # type: ignore[attr-defined]

    @property
    def leaves_torch(self) -> bool:
        """True when the stage's output is ONNX only, so torch stages cannot follow it."""
        return False


class Prune(StageConfig):
    """Remove a fraction of output channels/neurons physically (structured, Torch-Pruning).

    >>> Prune(amount=0.5, criterion="l2")
    Prune(stage='prune', pattern='channel', criterion='l2', amount=0.5, scope='layer', keep=())
    """

    stage: Literal["prune"] = "prune"
    pattern: Literal["channel"] = "channel"
    criterion: Literal["l1", "l2"] = "l2"
    amount: float = Field(0.5, gt=0.0, lt=1.0, description="fraction of channels removed")
    scope: Literal["layer", "global"] = "layer"
    keep: tuple[str, ...] = Field((), description="fnmatch patterns of layer names left unpruned")


class Finetune(StageConfig):
    """Train the compressed model on the task's training data to recover its metric.

    `distill` > 0 mixes in distillation from the uncompressed baseline (the teacher) with that weight.

    >>> Finetune(epochs=24, lr=2e-3, distill=0.5).epochs
    24
    """

    stage: Literal["finetune"] = "finetune"
    epochs: int = Field(24, ge=1, le=10_000)
    lr: float = Field(2e-3, gt=0.0, le=10.0)
    weight_decay: float = Field(0.0, ge=0.0)
    distill: float = Field(0.0, ge=0.0, le=1.0, description="weight of the distillation loss")
    temperature: float = Field(4.0, gt=0.0)


class Quantize(StageConfig):
    """Static int8 quantization in ONNX Runtime (QDQ), calibrated on training batches.

    >>> Quantize(calibration_batches=8).per_channel
    True
    """

    stage: Literal["quantize"] = "quantize"
    mode: Literal["static"] = "static"
    per_channel: bool = True
    calibration: Literal["minmax", "percentile", "entropy"] = "minmax"
    calibration_batches: int = Field(16, ge=1)

    @property
    def leaves_torch(self) -> bool:
        return True


AnyStage = Union[Prune, Finetune, Quantize]


def default_recipe() -> list[StageConfig]:
    """The demo's recipe: remove half the channels, fine-tune with distillation, then static int8."""
    return [Prune(amount=0.5, criterion="l2"), Finetune(epochs=24, lr=2e-3, distill=0.5), Quantize()]
