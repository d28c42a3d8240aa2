"""Patterns: which weights are removed together. Scores are summed per group; masks are expanded back.

Every weight is viewed as a 2-D matrix (out_features, everything else), the layout of the matmul that
runs it; blocks and N:M groups are laid on that matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from edgecompress.core.errors import UserError


@dataclass(frozen=True)
class Pattern:
    """How a layer's weight is cut into groups that are kept or removed together."""

    kind: str  # "unstructured", "block" or "nm"
    block: tuple[int, int] = (1, 1)
    n: int = 2
    m: int = 4

    def check(self, name: str, weight: torch.Tensor) -> None:
        rows, cols = _matrix_shape(weight)
        if self.kind == "block":
            bh, bw = self.block
            if rows % bh or cols % bw:
                raise UserError(
                    f"prune.block: {bh}x{bw} blocks do not divide layer {name}'s {rows}x{cols} weight matrix; "
                    "choose a block shape that divides both sides or leave this layer out"
                )
        if self.kind == "nm" and cols % self.m:
            raise UserError(f"prune.m: groups of {self.m} do not divide layer {name}'s {cols} input columns")

    def group_scores(self, scores: torch.Tensor) -> torch.Tensor:
        """Element scores (weight-shaped) -> one score per group."""
        matrix = scores.reshape(scores.shape[0], -1)
        if self.kind == "unstructured":
            return matrix
        if self.kind == "block":
            bh, bw = self.block
            rows, cols = matrix.shape
            return matrix.reshape(rows // bh, bh, cols // bw, bw).sum(dim=(1, 3))
        if self.kind == "nm":
            return matrix  # N:M ranks single weights inside each group of M; see `nm_keep`
        raise AssertionError(self.kind)

    def expand(self, keep_groups: torch.Tensor, weight_shape: torch.Size) -> torch.Tensor:
        """Group keep-mask -> weight-shaped keep-mask."""
        if self.kind == "block":
            bh, bw = self.block
            keep_groups = keep_groups.repeat_interleave(bh, dim=0).repeat_interleave(bw, dim=1)
        return keep_groups.reshape(weight_shape)

    def nm_keep(self, scores: torch.Tensor) -> torch.Tensor:
        """Keep the N highest-scoring weights in every run of M consecutive input weights of a row."""
        matrix = scores.reshape(scores.shape[0], -1)
        rows, cols = matrix.shape
        groups = matrix.reshape(rows, cols // self.m, self.m)
        top = groups.topk(self.n, dim=2).indices
        keep = torch.zeros_like(groups, dtype=torch.bool).scatter_(2, top, True)
        return keep.reshape(scores.shape)


def _matrix_shape(weight: torch.Tensor) -> tuple[int, int]:
    return weight.shape[0], weight[0].numel()
