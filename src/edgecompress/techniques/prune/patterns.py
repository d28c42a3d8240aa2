"""Patterns: which weights are removed together, as typed configs. `Prune(pattern=...)` takes one of them.

- `Unstructured()`: single weights;
- `Channels(round_to=8)`: whole output channels, physically removed with Torch-Pruning (`channel.py`);
- `Blocks(8, 8)`: rows x cols blocks of the weight matrix;
- `NM(2, 4)`: keep `n` of every `m` consecutive input weights of a row.

Every weight is viewed as a 2-D matrix (out_features, everything else), the layout of the matmul that runs
it; blocks and N:M groups are laid on that matrix. A masking pattern scores groups (the sum of their
weights' scores), keeps the best, and expands the kept groups back to a weight-shaped mask.

The configs load without torch (recipes are built from them): the methods work on the tensors they are
given, and import torch or `scope.py` only where they need them.

>>> Blocks(8, 8), NM(2, 4).amount
(Blocks(kind='block', rows=8, cols=8), 0.5)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

from edgecompress.core.errors import UserError

if TYPE_CHECKING:
    import torch


class PatternConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    removes_channels: ClassVar[bool] = False  # True: shapes change, so masks and later shape checks do not apply
    schedules: ClassVar[tuple[str, ...]] = ("oneshot", "iterative", "gradual")

    def problems(self, prune) -> list[str]:
        """What in the `Prune` config `prune` does not fit this pattern (empty if all fits)."""
        if prune.schedule not in self.schedules:
            return [f"schedule {prune.schedule} does not apply to pattern {self.kind}; use {' or '.join(self.schedules)}"]  # type: ignore[attr-defined]
        return []

    def check(self, name: str, weight: torch.Tensor) -> None:
        """Refuse (UserError) a layer whose weight this pattern cannot be laid on."""

    def group_scores(self, scores: torch.Tensor) -> torch.Tensor:
        """Element scores (weight-shaped) -> one score per group."""
        return scores.reshape(scores.shape[0], -1)

    def expand(self, keep_groups: torch.Tensor, weight_shape: torch.Size) -> torch.Tensor:
        """Group keep-mask -> weight-shaped keep-mask."""
        return keep_groups.reshape(weight_shape)

    def keep(self, scores: dict[str, torch.Tensor], amounts: dict[str, float], scope: str, fraction: float) -> dict[str, torch.Tensor] | None:
        """Weight-shaped keep-masks for `fraction` of the way to the target amounts (None: leave masks as they are)."""
        from edgecompress.techniques.prune.scope import keep_masks

        groups = {name: self.group_scores(s) for name, s in scores.items()}
        kept = keep_masks(groups, amounts, scope)
        return {name: self.expand(kept[name], s.shape) for name, s in scores.items()}


class Unstructured(PatternConfig):
    """Single weights: the most freedom, and no speed on a CPU below ~90% (FINDINGS sec. 2).

    >>> Unstructured().kind
    'unstructured'
    """

    kind: Literal["unstructured"] = "unstructured"


class Channels(PatternConfig):
    """Whole output channels, physically removed with Torch-Pruning: a smaller dense model.

    `round_to` = 8 keeps each pruned layer's channel count a multiple of 8 (scope layer only), which CPU
    convolution kernels need to stay fast.

    >>> Channels(round_to=8).round_to
    8
    """

    kind: Literal["channel"] = "channel"
    round_to: Optional[int] = Field(
        None, ge=1, le=1024,
        description="scope layer: each layer keeps the largest multiple of this many channels within its amount, at least one",
    )
    removes_channels: ClassVar[bool] = True
    schedules: ClassVar[tuple[str, ...]] = ("oneshot", "iterative")  # gradual would change shapes while training

    def problems(self, prune) -> list[str]:
        problems = super().problems(prune)
        if not prune.criterion.scores_channels:
            problems.append(f"criterion {prune.criterion.kind} does not apply to pattern channel; use magnitude, taylor or random")
        if prune.scope == "row":
            problems.append("scope row does not apply to pattern channel (it removes whole rows); use scope layer or global")
        if self.round_to is not None and prune.scope == "global":
            problems.append("round_to only applies to pattern channel with scope layer")
        return problems


class Blocks(PatternConfig):
    """`rows` x `cols` blocks of the weight matrix, kept or removed whole (8x8 at >= 75% runs fast in torch).

    >>> Blocks(16, 4).cols
    4
    """

    kind: Literal["block"] = "block"
    rows: int = Field(8, ge=1, le=65536)
    cols: int = Field(8, ge=1, le=65536)

    def __init__(self, rows: int = 8, cols: int = 8, **fields):
        super().__init__(rows=rows, cols=cols, **fields)

    @property
    def block(self) -> tuple[int, int]:
        return self.rows, self.cols

    def check(self, name: str, weight: torch.Tensor) -> None:
        rows, cols = _matrix_shape(weight)
        if rows % self.rows or cols % self.cols:
            raise UserError(
                f"prune.pattern: {self.rows}x{self.cols} blocks do not divide layer {name}'s {rows}x{cols} weight matrix; "
                "choose a block shape that divides both sides or leave this layer out"
            )

    def group_scores(self, scores: torch.Tensor) -> torch.Tensor:
        matrix = scores.reshape(scores.shape[0], -1)
        rows, cols = matrix.shape
        return matrix.reshape(rows // self.rows, self.rows, cols // self.cols, self.cols).sum(dim=(1, 3))

    def expand(self, keep_groups: torch.Tensor, weight_shape: torch.Size) -> torch.Tensor:
        keep_groups = keep_groups.repeat_interleave(self.rows, dim=0).repeat_interleave(self.cols, dim=1)
        return keep_groups.reshape(weight_shape)


class NM(PatternConfig):
    """Keep the `n` highest-scoring weights in every run of `m` consecutive input weights of a row; the
    amount is fixed at 1 - n/m and every layer gets it (no global scope).

    >>> NM(1, 4).amount
    0.75
    """

    kind: Literal["nm"] = "nm"
    n: int = Field(2, ge=1)
    m: int = Field(4, ge=2)

    def __init__(self, n: int = 2, m: int = 4, **fields):
        super().__init__(n=n, m=m, **fields)

    @model_validator(mode="after")
    def _n_below_m(self):
        if self.n >= self.m:
            raise ValueError(f"n must be smaller than m for N:M sparsity, got {self.n}:{self.m}")
        return self

    @property
    def amount(self) -> float:
        return 1 - self.n / self.m

    def problems(self, prune) -> list[str]:
        problems = super().problems(prune)
        default = type(prune).model_fields["amount"].default
        if prune.amount != default and abs(prune.amount - self.amount) > 1e-9:
            problems.append(f"amount is fixed at 1 - n/m = {self.amount:g} for pattern nm; leave it out")
        if prune.scope == "global":
            problems.append("scope global does not apply to pattern nm (every group of m keeps n)")
        return problems

    def check(self, name: str, weight: torch.Tensor) -> None:
        if _matrix_shape(weight)[1] % self.m:
            raise UserError(f"prune.pattern: groups of {self.m} (N:M) do not divide layer {name}'s {_matrix_shape(weight)[1]} input columns")

    def keep(self, scores, amounts, scope, fraction):
        if fraction < 1.0:  # N:M has no partial form: the schedules' earlier steps leave the masks alone
            return None
        return {name: self.nm_keep(s) for name, s in scores.items()}

    def nm_keep(self, scores: torch.Tensor) -> torch.Tensor:
        import torch

        matrix = scores.reshape(scores.shape[0], -1)
        rows, cols = matrix.shape
        groups = matrix.reshape(rows, cols // self.m, self.m)
        top = groups.topk(self.n, dim=2).indices
        keep = torch.zeros_like(groups, dtype=torch.bool).scatter_(2, top, True)
        return keep.reshape(scores.shape)


def _matrix_shape(weight: torch.Tensor) -> tuple[int, int]:
    return weight.shape[0], weight[0].numel()
