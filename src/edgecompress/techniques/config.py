"""The base of every stage config: a small frozen pydantic object that says what a stage does.

Config modules (`techniques/*/config.py`) import pydantic and each other, never torch: the recipe schema is
built from them, so `edgecompress validate` and `--help` load them without the heavy stack. What a config
does lives in its handler (`techniques/*/stage.py`, registered in `orchestration/pipeline/handlers.py`).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StageConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)  # NaN and Inf are never settings

    @property
    def name(self) -> str:
        return self.stage  # type: ignore[attr-defined]

    @property
    def leaves_torch(self) -> bool:
        """True when the stage's output is ONNX only, so torch stages cannot follow it."""
        return False

    @property
    def needs_labels(self) -> bool:
        """True when the stage trains on the task's labels (its loss), so a task without labels cannot run it."""
        return False


def field_default(config: type[BaseModel] | BaseModel, name: str):
    cls = config if isinstance(config, type) else type(config)
    return cls.model_fields[name].get_default(call_default_factory=True)
