"""The factorize stage's config (pydantic only: the recipe schema loads it without torch)."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, model_validator

from edgecompress.techniques.config import StageConfig, field_default


class Factorize(StageConfig):
    """Low-rank factorization by truncated SVD: a Linear becomes two thin Linears; with `convs`, a KxK
    convolution becomes a thin KxK convolution then a 1x1 one (`lowrank/conv.py`).

    `keep` keeps that fraction of the chosen layers' parameters (met within 1% over all of them); `energy` instead keeps the smallest rank holding
    that fraction of the squared singular values. Follow it with `finetune` to recover.

    >>> Factorize(keep=0.25).keep
    0.25
    """

    stage: Literal["factorize"] = "factorize"
    keep: Optional[float] = Field(0.5, gt=0.0, lt=1.0, description="fraction of each layer's parameters kept")
    energy: Optional[float] = Field(None, gt=0.0, lt=1.0, description="fraction of spectral energy kept")
    layers: tuple[str, ...] = Field(("*",), description="fnmatch patterns of layers to factorize")
    keep_classifier: bool = True
    convs: bool = Field(False, description="also factorize ungrouped Conv2d layers (two thinner convolutions)")

    @model_validator(mode="after")
    def _one_rank_rule(self):
        if self.energy is not None and self.keep != field_default(self, "keep") and self.keep is not None:
            raise ValueError("give keep or energy, not both")
        return self
