"""What every handler shares: what it receives and returns.

A technique is a frozen config (a `StageConfig` subclass in the technique's `config.py`, see
`techniques/config.py`) and a handler `fn(config, state, ctx) -> ModelState`;
`orchestration/pipeline/handlers.py` maps config types to handlers, one line per technique.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from edgecompress.core.errors import UserError
from edgecompress.core.evaluate import score_onnx
from edgecompress.core.tasks.task import Task
from edgecompress.runtime.targets import DEFAULT_TARGET
from edgecompress.techniques.config import StageConfig

__all__ = ["DecisionData", "Handler", "ModelState", "StageConfig", "StageContext"]


@dataclass
class ModelState:
    """The model between stages: a torch module while torch stages run, then only its ONNX file."""

    torch_model: nn.Module | None
    onnx_path: Path | None = None
    params: int = 0
    nonzero_params: int = 0
    macs: int = 0
    details: dict = field(default_factory=dict)  # stage-specific findings reported in metrics.json


@dataclass
class StageContext:
    """What a handler may use besides the model: the task's data, the teacher, where ONNX output goes."""

    task: Task | None  # None: no data (`apply` without data); handlers that need it say so
    example_input: torch.Tensor | None
    teacher: nn.Module  # the uncompressed model
    artifact_path: Path | None  # where a stage that writes ONNX itself must put it
    label: str  # e.g. "stage 2/3 (finetune)", for progress and errors
    seed: int = 0
    score_fn: Callable | None = None  # a Python callable for a custom prune criterion, from the API
    target: str = DEFAULT_TARGET  # the CPU class the artifact must be exact on (runtime/targets.py)

    def require_task(self, stage: str) -> Task:
        if self.task is None:
            raise UserError(f"{stage}: this stage needs data; pass data= (a Task or a loader of (inputs, targets) batches)")
        return self.task


Handler = Callable[[StageConfig, ModelState, StageContext], ModelState]


class DecisionData:
    """Scores used to make choices: the task's validation loader, else its training loader; never the eval set."""

    def __init__(self, task: Task):
        loader = task.val_loader if task.val_loader is not None else task.train_loader
        self.name = "validation data" if task.val_loader is not None else "training data"
        self._task = task.scored_on(loader)

    def score(self, path: Path) -> float:
        return score_onnx(path, self._task)
