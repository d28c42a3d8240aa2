"""Criteria: what a weight's importance is, as typed configs. `Prune(criterion=...)` takes one of them, or a
Python callable `fn(name, module) -> scores`. Each scores every weight (higher = keep).

- `Magnitude(norm=1|2)`, `Random()` (the control): no data;
- `Taylor()` (|w x grad|), `Wanda()` (|w| x input norm): calibration data;
- `Movement()`: needs training (schedule iterative or gradual);
- `Custom(score_fn="module:function")` or a callable; `OwnMasks(file="masks.safetensors")`: masks as given.

The configs hold no torch code, so recipes load without it: `scoring.py` computes each kind's scores.

>>> Magnitude(norm=1), Wanda().needs_data
(Magnitude(kind='magnitude', norm=1), True)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:
    from torch import nn

    from edgecompress.techniques.prune.scoring import ScoreContext, Scores


class CriterionConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    needs_data: ClassVar[bool] = False
    needs_training: ClassVar[bool] = False
    scores_channels: ClassVar[bool] = False  # Torch-Pruning has an importance for it (pattern Channels)

    def scores(self, layers: dict[str, nn.Module], ctx: ScoreContext) -> Scores:
        """Every weight of `layers` scored (higher = keep) by this criterion's function in `scoring.py`."""
        from edgecompress.techniques.prune.scoring import SCORERS  # torch: only once something is scored

        if self.kind not in SCORERS:
            raise NotImplementedError(f"criterion {self.kind} scores no weights")
        return SCORERS[self.kind](self, layers, ctx)


class Magnitude(CriterionConfig):
    """|w| (norm 1) or w^2 (norm 2); the same ranking per weight, different sums over groups."""

    kind: Literal["magnitude"] = "magnitude"
    norm: Literal[1, 2] = 2
    scores_channels: ClassVar[bool] = True


class Random(CriterionConfig):
    """Random scores from the run's seed: the control every other criterion must beat."""

    kind: Literal["random"] = "random"
    scores_channels: ClassVar[bool] = True


class Taylor(CriterionConfig):
    """First-order Taylor (Molchanov et al. 2019) on calibration batches."""

    kind: Literal["taylor"] = "taylor"
    needs_data: ClassVar[bool] = True
    scores_channels: ClassVar[bool] = True


class Wanda(CriterionConfig):
    """Wanda (Sun et al. 2023): |W_ij| x ||X_j||_2 over calibration batches."""

    kind: Literal["wanda"] = "wanda"
    needs_data: ClassVar[bool] = True


class Movement(CriterionConfig):
    """Movement (Sanh et al. 2020), accumulated during training."""

    kind: Literal["movement"] = "movement"
    needs_training: ClassVar[bool] = True


class Custom(CriterionConfig):
    """Your own scores: `score_fn` = "module:function", or `fn`, a Python callable (name, module) -> scores of
    the weight's shape (`Prune(criterion=fn)` builds this; `fn` is not serialized)."""

    kind: Literal["custom"] = "custom"
    score_fn: Optional[str] = Field(None, description="module:function(name, module) -> scores")
    fn: Optional[Any] = Field(None, exclude=True, description="a Python callable (name, module) -> scores")

    @model_validator(mode="after")
    def _one_source(self):
        if (self.score_fn is None) == (self.fn is None):
            raise ValueError("criterion custom needs exactly one of score_fn (module:function) or a Python callable")
        if self.fn is not None and not callable(self.fn):
            raise ValueError(f"criterion custom: fn must be callable, got {type(self.fn).__name__}")
        return self


class OwnMasks(CriterionConfig):
    """0/1 masks by layer name from a .safetensors `file`, applied as given (pattern unstructured, schedule oneshot)."""

    kind: Literal["masks"] = "masks"
    file: str = Field(description="a .safetensors file of 0/1 masks by layer name")
