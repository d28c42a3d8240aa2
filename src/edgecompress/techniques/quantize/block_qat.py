"""Quantization-aware training for block-wise int4: the exact grids ONNX Runtime will store.

Low-bit weights lose fidelity that fine-tuning can win back only if training sees the same rounding as the
shipped model. Two grids, both straight-through (w + (q(w) - w).detach()):
- MatMul weights, as ORT's MatMulNBits quantizer writes them (symmetric): per block of `block_size` inputs
  of one output, scale = (the block's largest-magnitude value) / -8, levels -8..7, so that value is exact.
- Embedding tables, as `quantize/embedding_tables.py` writes them: per block of a row, scale = max|w| / 7,
  levels -7..7.
After training, `bake_block_qat` leaves every weight on its grid; quantizing then changes nothing, so the
ONNX model evaluates exactly what was trained.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

from edgecompress.core.errors import UserError
from edgecompress.techniques.quantize.embedding_tables import row_block_size


class MatMulNBitsGrid(nn.Module):
    """Linear weight [out, in] on ORT's symmetric int4 grid, blocks along the input axis."""

    def __init__(self, block_size: int = 32):
        super().__init__()
        self.block_size = block_size

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight + (matmul_nbits_grid(weight.detach(), self.block_size) - weight).detach()


class EmbeddingRowGrid(nn.Module):
    """Embedding table [rows, dim] on a symmetric int`bits` grid, blocks along each row."""

    def __init__(self, bits: int = 4, block_size: int = 64):
        super().__init__()
        self.bits, self.block_size = bits, block_size

    def forward(self, table: torch.Tensor) -> torch.Tensor:
        return table + (embedding_grid(table.detach(), self.bits, self.block_size) - table).detach()


def matmul_nbits_grid(weight: torch.Tensor, block_size: int) -> torch.Tensor:
    """>>> matmul_nbits_grid(torch.tensor([[1.0, -0.5, 0.26, 0.0]]), 4).tolist()
    [[1.0, -0.5, 0.25, 0.0]]
    """
    out_features, in_features = weight.shape
    blocks = _blocks(weight, block_size)
    extreme = blocks.gather(2, blocks.abs().argmax(dim=2, keepdim=True))
    scale = extreme / -8.0
    scale = torch.where(scale != 0, scale, torch.ones_like(scale))
    grid = torch.clamp(torch.round(blocks / scale), -8, 7) * scale
    return grid.reshape(out_features, -1)[:, :in_features]


def embedding_grid(table: torch.Tensor, bits: int, block_size: int) -> torch.Tensor:
    levels = 2 ** (bits - 1) - 1
    blocks = _blocks(table, block_size)
    scale = blocks.abs().amax(dim=2, keepdim=True) / levels
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    return (torch.clamp(torch.round(blocks / scale), -levels, levels) * scale).reshape(table.shape[0], -1)[:, : table.shape[1]]


def _blocks(weight: torch.Tensor, block_size: int) -> torch.Tensor:
    rows, cols = weight.shape
    padded = -(-cols // block_size) * block_size  # ORT pads a short last block with zeros
    if padded != cols:
        weight = torch.nn.functional.pad(weight, (0, padded - cols))
    return weight.reshape(rows, padded // block_size, block_size)


def prepare_block_qat(
    model: nn.Module,
    block_size: int = 32,
    embedding_bits: int = 4,
    embedding_block_size: int = 64,
    min_rows: int = 4096,
    train_embeddings: bool = False,
) -> dict[str, int]:
    """Put every Linear weight and every large embedding table of `model` on its int4 grid (in place).

    Embedding tables are put on their grid once and frozen unless `train_embeddings`: re-gridding and
    updating a 30k-row table every step tripled MiniLM's step time for little fidelity (only the rows of
    the batch's tokens get gradients anyway). Returns how many of each were prepared; call
    `bake_block_qat` after training.
    """
    for name, size in (("quantize.block_size", block_size), ("quantize.embedding_block_size", embedding_block_size)):
        if size < 16 or size & (size - 1):
            raise UserError(f"{name}: must be a power of two >= 16, got {size}")
    counts = {"linear": 0, "embedding": 0}
    for module in list(model.modules()):
        if isinstance(module, nn.Linear):
            parametrize.register_parametrization(module, "weight", MatMulNBitsGrid(block_size))
            counts["linear"] += 1
        elif isinstance(module, nn.Embedding) and module.num_embeddings >= min_rows and (block := row_block_size(module.embedding_dim, embedding_block_size)):
            if train_embeddings:
                parametrize.register_parametrization(module, "weight", EmbeddingRowGrid(embedding_bits, block))
            else:
                with torch.no_grad():
                    module.weight.copy_(embedding_grid(module.weight, embedding_bits, block))
                module.weight.requires_grad_(False)
            counts["embedding"] += 1
    if not counts["linear"]:
        raise UserError("quantize: the model has no Linear layers to put on an int4 grid")
    return counts


def bake_block_qat(model: nn.Module) -> None:
    """Replace each grid parametrization by its grid values (plain weights again)."""
    for module in list(model.modules()):
        if parametrize.is_parametrized(module, "weight") and any(
            isinstance(p, (MatMulNBitsGrid, EmbeddingRowGrid)) for p in module.parametrizations["weight"]
        ):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
