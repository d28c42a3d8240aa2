"""GPTQ rounding: choose each integer weight so the layer's *output* error is small, not each weight's own.

Rounding to nearest treats every weight alone. GPTQ (Frantar et al. 2023) rounds one input column at a time
and spreads that column's rounding error over the columns not yet rounded, weighted by the inverse Hessian
H = X^T X of the layer's calibration inputs (Optimal Brain Surgeon). On a fixed grid it costs nothing at
run time: same integers, same scales, same kernels, a smaller error. Measured on all-MiniLM-L6-v2 with
weights within +-64 (exact on every CPU class): overlap@10 0.925 rounded to nearest, 0.936 with GPTQ,
against 0.944 for full int8 weights rounded to nearest (which saturate on AVX2).

Written by hand because the libraries that implement GPTQ (auto-gptq, gptqmodel, llm-compressor) target
CUDA and 4-bit LLM checkpoints, not an ONNX model's int8 weights on their runtime's grid.
"""

from __future__ import annotations

import torch

BLOCK = 128  # columns updated lazily together (the paper's block size)
DAMPING = 0.01  # fraction of the mean Hessian diagonal added for a stable inverse


def gptq_round(
    weight: torch.Tensor, hessian: torch.Tensor, scale: torch.Tensor, qmax: int, qmin: int | None = None, offset: torch.Tensor | None = None
) -> torch.Tensor:
    """Integers for `weight` (out_features x in_features) on the grid `scale` (one per output row, or one per
    weight: a block grid's).

    `hessian` is X^T X over calibration inputs X (tokens x in_features). Returns integers in
    [qmin, qmax] (default symmetric: -qmax) as int64; `weight ~= integers * scale`, or with `offset` (a zero
    point per weight, stored integers being unsigned) `weight ~= (integers - offset) * scale`.

    >>> w = torch.randn(4, 16, dtype=torch.float64); x = torch.randn(64, 16, dtype=torch.float64)
    >>> q = gptq_round(w, x.T @ x, w.abs().amax(1, keepdim=True) / 7, 7)
    >>> bool(q.abs().max() <= 7)
    True
    """
    qmin = -qmax if qmin is None else qmin
    w = weight.detach().to(torch.float64).clone()
    scale = scale.detach().to(torch.float64)
    # one scale per row, or one per weight (a block grid's scales repeated over their blocks); a scale may be
    # negative (ONNX Runtime's symmetric 4-bit grid maps the largest |w| to -8), never zero
    scale = scale.reshape(-1, 1).expand_as(w) if scale.numel() == w.shape[0] else scale.reshape(w.shape)
    scale = torch.where(scale != 0, scale, torch.ones_like(scale))
    columns = w.shape[1]
    h = hessian.detach().to(torch.float64).clone()
    dead = torch.diag(h) == 0  # inputs never seen: their weights cannot matter, round them plainly
    h[dead, dead] = 1.0
    h += DAMPING * torch.mean(torch.diag(h)) * torch.eye(columns, dtype=h.dtype)
    upper = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(h)), upper=True)
    offset = torch.zeros_like(w) if offset is None else offset.to(torch.float64).reshape(w.shape)
    integers = torch.zeros_like(w)
    for start in range(0, columns, BLOCK):
        end = min(start + BLOCK, columns)
        block, errors = w[:, start:end].clone(), torch.zeros(w.shape[0], end - start, dtype=w.dtype)
        inverse = upper[start:end, start:end]
        for i in range(end - start):
            column_scale, column_offset = scale[:, start + i : start + i + 1], offset[:, start + i : start + i + 1]
            q = torch.clamp(torch.round(block[:, i : i + 1] / column_scale) + column_offset, qmin, qmax)
            integers[:, start + i] = q[:, 0]
            error = (block[:, i : i + 1] - (q - column_offset) * column_scale) / inverse[i, i]
            block[:, i:] -= error @ inverse[i : i + 1, i:]
            errors[:, i] = error[:, 0]
        w[:, end:] -= errors @ upper[start:end, end:]
    return integers.to(torch.int64)
