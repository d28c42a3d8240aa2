"""The recipe schema. Stages are the pipeline's own config classes, so YAML and Python mean the same thing."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

from edgecompress.core.seeding import MAX_SEED
from edgecompress.orchestration.pipeline.stages import AnyStage
from edgecompress.runtime.targets import DEFAULT_TARGET, Target


class TrainSettings(BaseModel):
    """Train the model before compressing it (for a built-in or freshly built model without weights)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
    epochs: int = Field(40, ge=1, le=10_000)
    lr: float = Field(2e-3, gt=0.0, le=10.0)


class Execution(BaseModel):
    """Where the trials of `sweep`, `sensitivity` and `fit --recipe` run (a single `run` has no trials to spread).

    >>> Execution(executor="ray", ray_address="auto", cpus_per_trial=2).jobs
    1
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
    executor: Literal["local", "ray"] = "local"
    jobs: int = Field(1, ge=1, le=1024, description="local worker processes (executor local)")
    ray_address: Optional[str] = Field(None, description="Ray cluster address, e.g. auto or ray://head:10001 (default: a local instance)")
    cpus_per_trial: float = Field(1.0, gt=0.0, le=4096, description="CPUs each Ray task declares")
    gpus_per_trial: float = Field(0.0, ge=0.0, le=1024, description="GPUs each Ray task declares")
    max_retries: int = Field(3, ge=0, le=100, description="times Ray reruns a trial whose worker died")

    @model_validator(mode="after")
    def _applies(self):
        if self.executor == "local" and self.ray_address is not None:
            raise ValueError("ray_address is only used with executor ray")
        if self.executor == "ray" and self.jobs != 1:
            raise ValueError("jobs is for executor local; Ray runs as many trials at once as the cluster has CPUs")
        return self

    def make(self):
        """The executor these settings describe."""
        from edgecompress.orchestration.executors import make_executor

        if self.executor == "ray":
            from edgecompress.orchestration.executors.ray import RayExecutor

            return RayExecutor(self.ray_address, self.cpus_per_trial, self.gpus_per_trial, self.max_retries)
        return make_executor("local", self.jobs)


class Recipe(BaseModel):
    """A whole compression job.

    >>> Recipe.model_validate({"model": "digits-cnn", "task": "digits", "stages": [{"stage": "quantize"}]}).seed
    0
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
    model: str = Field(description="built-in model name, module:function, or a saved model file")
    weights: Optional[str] = Field(None, description="state dict to load into the model (.safetensors or .pt)")
    task: str = Field("digits", description="built-in task name or module:function returning an edgecompress.Task")
    train: Optional[TrainSettings] = None
    seed: int = Field(0, ge=0, le=MAX_SEED)
    target: Target = Field(DEFAULT_TARGET, description="CPU class the int8 artifact must compute exactly on: portable (all), auto (this machine), x86-avx2, x86-vnni, arm64")
    stages: list[AnyStage] = Field(min_length=1)
    execution: Execution = Field(default_factory=Execution, description="where sweep/sensitivity/fit trials run")
