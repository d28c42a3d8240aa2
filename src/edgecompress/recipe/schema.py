"""The recipe schema. Stages are the pipeline's own config classes, so YAML and Python mean the same thing."""

from __future__ import annotations

from typing import Annotated, Optional

from pydantic import BaseModel, ConfigDict, Field

from edgecompress.pipeline.stages import AnyStage


class TrainSettings(BaseModel):
    """Train the model before compressing it (for a built-in or freshly built model without weights)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    epochs: int = Field(40, ge=1, le=10_000)
    lr: float = Field(2e-3, gt=0.0, le=10.0)


class Recipe(BaseModel):
    """A whole compression job.

    >>> Recipe.model_validate({"model": "digits-cnn", "task": "digits", "stages": [{"stage": "quantize"}]}).seed
    0
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    model: str = Field(description="built-in model name, module:function, or a saved model file")
    weights: Optional[str] = Field(None, description="state dict to load into the model (.safetensors or .pt)")
    task: str = Field("digits", description="built-in task name or module:function returning an edgecompress.Task")
    train: Optional[TrainSettings] = None
    seed: int = Field(0, ge=0)
    stages: list[Annotated[AnyStage, Field(discriminator="stage")]] = Field(min_length=1)
