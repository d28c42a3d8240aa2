"""The configs of the stages that remove FFN neurons and attention heads (pydantic only: the recipe schema
loads them without torch)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

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

