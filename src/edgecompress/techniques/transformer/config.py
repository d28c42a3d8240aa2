"""The configs of the stages that remove FFN neurons, attention heads and whole layers (pydantic only: the
recipe schema loads them without torch)."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, model_validator

from edgecompress.techniques.config import StageConfig


class Removal(StageConfig):
    """What both removals share; each subclass is a stage."""

    stage: str  # each subclass names its own
    fraction: float = Field(0.5, gt=0.0, lt=1.0, description="share removed in every layer")
    criterion: Literal["wanda", "magnitude"] = Field("wanda", description="activation-aware on calibration batches, or weight norms")
    calibration_batches: int = Field(32, ge=1, le=100_000, description="training batches read by wanda and the refit")
    refit: bool = Field(True, description="wanda only: refit the output projection by least squares on the kept inputs")


class RemoveFfn(Removal):
    """Remove `fraction` of the FFN neurons of every transformer layer: rows of the up projection and columns of
    the down projection, so the matrices really shrink. Ranked by activation (Wanda) and refitted by default.

    >>> RemoveFfn(fraction=0.5).criterion
    'wanda'
    """

    stage: Literal["remove_ffn"] = "remove_ffn"


class RemoveHeads(Removal):
    """Remove `fraction` of the attention heads of every transformer layer (their query, key and value rows and
    output-projection columns). In a decoder with grouped-query attention, `fraction` of the query heads of each
    key/value group go (rounded to the nearest head, at least one kept), so the key/value cache stays as it is.

    >>> RemoveHeads(fraction=0.25).stage
    'remove_heads'
    """

    stage: Literal["remove_heads"] = "remove_heads"
    fraction: float = Field(0.25, gt=0.0, lt=1.0, description="share of heads removed in every layer (of each key/value group's query heads in a decoder)")


class RemoveLayers(StageConfig):
    """Remove whole transformer layers (depth pruning): `count` of them, or `fraction` of them (rounded to the
    nearest layer), those that change the hidden states least on calibration batches (`block_influence`: 1 -
    the mean cosine between a layer's input and output over real tokens, as in ShortGPT), or simply the last
    ones (`last`, for comparison). Weight norms say nothing about a residual layer's effect, so there is no
    magnitude criterion.

    >>> RemoveLayers(count=2).criterion
    'block_influence'
    """

    stage: Literal["remove_layers"] = "remove_layers"
    count: Optional[int] = Field(None, ge=1, le=100_000, description="layers removed")
    fraction: Optional[float] = Field(None, gt=0.0, lt=1.0, description="share of the layers removed (instead of count)")
    criterion: Literal["block_influence", "last"] = Field("block_influence", description="lowest block influence on calibration batches, or the last layers")
    calibration_batches: int = Field(32, ge=1, le=100_000, description="training batches read by block_influence")

    @model_validator(mode="after")
    def _count_or_fraction(self):
        if (self.count is None) == (self.fraction is None):
            raise ValueError("give count (layers removed) or fraction (share of the layers removed), one of them")
        return self
