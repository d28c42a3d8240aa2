"""The distill stage's config (pydantic only: the recipe schema loads it without torch)."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field

from edgecompress.techniques.config import StageConfig


class Distill(StageConfig):
    """Train the model to reproduce the uncompressed model's outputs on the task's training inputs (labels are
    not read, so it works for tasks without them, e.g. sentence encoders).

    AdamW with warm-up and linear decay over `epochs` passes or `seconds`, whichever ends first (a time budget
    makes the result depend on the machine's speed; the epochs alone keep it reproducible). Parameters whose
    names match a `frozen` pattern stay as they are (e.g. a large word-embedding table whose rows a batch
    barely touches). Pruning masks and fake-quantization grids stay in force while it trains.

    >>> Distill(seconds=240, epochs=8, frozen=("*word_embeddings*",), loss="cosine").loss
    'cosine'
    """

    stage: Literal["distill"] = "distill"
    epochs: int = Field(3, ge=1, le=10_000, description="at most this many passes over the training inputs")
    seconds: Optional[float] = Field(None, gt=0.0, le=7 * 24 * 3600, description="time budget (none: the epochs decide)")
    lr: float = Field(2e-4, gt=0.0, le=10.0)
    loss: Optional[Literal["cosine", "mse", "kl"]] = Field(
        None, description="1 - cosine to the teacher's output, squared error, or KL divergence of the softmax "
        "(none: kl for a task whose outputs are class scores, e.g. a language model's, cosine for embeddings)",
    )
    frozen: tuple[str, ...] = Field((), description="fnmatch patterns of parameter names left unchanged")
    dropout: bool = Field(False, description="train with the model's dropout on (off: match the teacher's deterministic output)")
