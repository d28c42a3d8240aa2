"""Making block sparsity pay: run a Linear whose weight has whole zero blocks with a sparse kernel.

A block mask (`prune/patterns.py`) only zeroes weights; the matmul still does every multiply (FINDINGS 1).
`BlockSparseLinear` stores only the kept blocks, so the work shrinks with the sparsity. It is an inference
form for torch: its weights are buffers (nothing to train), and it does not export to ONNX; export the dense
(or masked) model instead.

Two layouts, chosen by block shape from measurements on the project's CPU (1 thread, 1024x1024, 90% of blocks
removed, speedup vs torch dense fp32 at batch 1 / 16 / 256):

- "bsr": torch's BSR tensor, `addmm(bias, W_bsr, x.T)`. 4x4: 1.1x/3.1x/3.5x; 8x8: 1.5x/3.9x/4.1x;
  16x16: 1.1x/2.0x/2.4x.
- "gather": the kept blocks as one (nnzb, bw, bh) tensor plus their block-row/column indices; gather the
  input slices, one batched dense matmul, `index_add_` into the output rows. 8x8: 0.5x/0.9x/0.3x (hundreds
  of tiny matmuls plus the gathered copy of the input cost more than they save); 16x16: 0.6x/2.8x/1.9x;
  32x32: 2.8x/4.8x/4.6x; 64x64: 3.8x/6.9x/6.5x.

So BSR for blocks narrower than 32 on either side, gather from 32x32 up. Note `F.linear(x, W_bsr)` is the
wrong call for BSR: up to 3.5x slower than dense (x @ W.T puts the sparse matrix, transposed, on the right) and fails
under `torch.inference_mode` ("Cannot set version_counter for inference tensor"); `addmm` with the sparse
matrix on the left is fast and works under `no_grad` and `inference_mode`. Its backward is not implemented
in torch ("addmm: ... not implemented for Strided + SparseBsc @ Strided"), so the BSR layout refuses inputs
that require grad rather than fail later inside `backward()`.

Example:
    >>> layer = nn.Linear(512, 256)
    >>> # ... prune it with 8x8 blocks, e.g. Prune(pattern="block", block=(8, 8), amount=0.9) ...
    >>> sparse = BlockSparseLinear.from_linear(layer, block=(8, 8))
    >>> with torch.inference_mode():
    ...     y = sparse(torch.randn(4, 512))
    >>> report = convert_block_sparse(model, block=(8, 8), min_sparsity=0.75)  # whole model, in place
"""

from __future__ import annotations

import torch
from torch import nn

from edgecompress.core.errors import UserError
from edgecompress.core.verbosity import quiet_libraries

LAYOUTS = ("bsr", "gather")
GATHER_MIN_BLOCK = 32  # from 32x32 blocks up the gather layout beats BSR at every batch size (see above)

# Thresholds of `choose_block_sparse_path`, measured like the table above (speedup vs torch dense fp32):
LARGE_BATCH = 16  # 8x8 at 75%: 0.64x at batch 1 but 1.6x at 16 and 1.8x at 256
SMALL_BATCH_MIN_SPARSITY = 0.9  # below batch 16 only 90% pays (8x8: 1.5x; 32x32 gather: 3.0x)
SMALL_BATCH_MIN_WEIGHTS = 1 << 19  # ...and only on big layers: 256x512 at 90% is 0.7x-0.8x at batch 1
COARSE_BSR_MIN_SPARSITY = 0.9  # 16x16 BSR at 75%: 0.86x-1.04x; torch's BSR kernel is best at 8x8


def block_sparsity(weight: torch.Tensor, block: tuple[int, int]) -> float:
    """Fraction of the (bh, bw) blocks of a 2-D weight that are entirely zero.

    >>> block_sparsity(torch.zeros(16, 16), (8, 8))
    1.0
    """
    _check_block(block)
    _check_divides(weight, block, "weight")
    bh, bw = block
    rows, cols = weight.shape
    nonzero = weight.detach().reshape(rows // bh, bh, cols // bw, bw).ne(0).any(dim=3).any(dim=1)
    return 1.0 - nonzero.float().mean().item()


def default_layout(block: tuple[int, int]) -> str:
    """The faster layout on this CPU for a block shape: "gather" from 32x32 up, else "bsr" (see module doc)."""
    return "gather" if min(block) >= GATHER_MIN_BLOCK else "bsr"


class BlockSparseLinear(nn.Module):
    """A Linear layer storing only its non-zero (bh, bw) weight blocks; same output as the dense layer.

    Inputs of shape (..., in_features), e.g. (batch, in) or (batch, seq, in). Build it with `from_linear`;
    a state dict loads only into a module with the same number of kept blocks.

    >>> sparse = BlockSparseLinear.from_linear(pruned_linear, block=(8, 8))
    >>> sparse.layout, f"{sparse.sparsity:.0%}"
    ('bsr', '90%')
    """

    def __init__(
        self,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        block: tuple[int, int] = (8, 8),
        layout: str | None = None,
    ):
        super().__init__()
        block = _check_block(block)
        if weight.dim() != 2 or not weight.is_floating_point():
            raise UserError(
                f"weight: expected a 2-D floating-point matrix, got {weight.dim()}-D {weight.dtype}"
            )
        _check_divides(weight, block, "block")
        layout = default_layout(block) if layout is None else layout
        if layout not in LAYOUTS:
            raise UserError(f"layout: got {layout!r}, expected one of {', '.join(LAYOUTS)} or None (by block shape)")
        weight = weight.detach()
        self.out_features, self.in_features = weight.shape
        self.block = block
        self.layout = layout
        self.sparsity = block_sparsity(weight, block)
        if layout == "bsr":
            # "Sparse BSR tensor support is in beta state": torch warns once per process; the path we use
            # (addmm, CPU, float) is covered by the tests, so the warning would only be noise to a user.
            with quiet_libraries(warnings=(".*Sparse BSR tensor support is in beta",)):
                bsr = weight.to_sparse_bsr(block)  # drops all-zero blocks
            self.register_buffer("crow_indices", bsr.crow_indices().clone())
            self.register_buffer("col_indices", bsr.col_indices().clone())
            self.register_buffer("values", bsr.values().clone())
        else:
            bh, bw = block
            grid = weight.reshape(self.out_features // bh, bh, self.in_features // bw, bw).permute(0, 2, 3, 1)
            kept = grid.ne(0).any(dim=3).any(dim=2)
            rows, cols = kept.nonzero(as_tuple=True)  # row-major order
            self.register_buffer("block_rows", rows)
            self.register_buffer("block_cols", cols)
            self.register_buffer("blocks_t", grid[rows, cols].contiguous())  # (nnzb, bw, bh): x_slice @ block.T
        self.register_buffer("bias", None if bias is None else bias.detach().clone())

    @classmethod
    def from_linear(cls, linear: nn.Linear, block: tuple[int, int] = (8, 8), layout: str | None = None):
        """Sparse copy of `linear`; a masked (parametrized) layer contributes its masked weight.

        >>> BlockSparseLinear.from_linear(nn.Linear(64, 32), block=(8, 8)).layout
        'bsr'
        """
        if not isinstance(linear, nn.Linear):
            raise UserError(f"linear: expected an nn.Linear, got {type(linear).__name__}")
        # `linear.weight` goes through the parametrization, so a masked layer gives weight * mask.
        return cls(linear.weight, linear.bias, block=block, layout=layout)

    @property
    def kept_blocks(self) -> int:
        return (self.values if self.layout == "bsr" else self.blocks_t).shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features)
        out = self._bsr(flat) if self.layout == "bsr" else self._gather(flat)
        return out.reshape(*x.shape[:-1], self.out_features)

    def _bsr(self, flat: torch.Tensor) -> torch.Tensor:
        if flat.requires_grad and torch.is_grad_enabled():
            raise UserError(
                "x: the BSR layout is inference-only (torch has no backward for it); "
                "call it under torch.no_grad() or torch.inference_mode(), or detach the input"
            )
        # The sparse tensor is rebuilt from its buffers on every call (~2 us): a BSR tensor cannot be a
        # buffer because `copy.deepcopy` fails on it ("Cannot access storage of SparseCsrTensorImpl"),
        # and plain buffers follow `.to()` and `load_state_dict` for free.
        weight = torch.sparse_bsr_tensor(
            self.crow_indices, self.col_indices, self.values,
            (self.out_features, self.in_features), check_invariants=False,
        )
        # W @ x.T with the sparse matrix on the left: the fast kernel, and legal under inference_mode.
        if self.bias is None:
            return torch.mm(weight, flat.t()).t()
        return torch.addmm(self.bias.unsqueeze(1), weight, flat.t()).t()

    def _gather(self, flat: torch.Tensor) -> torch.Tensor:
        bh, bw = self.block
        batch = flat.shape[0]
        slices = flat.reshape(batch, self.in_features // bw, bw)[:, self.block_cols]  # (batch, nnzb, bw)
        partial = torch.bmm(slices.transpose(0, 1), self.blocks_t)  # (nnzb, batch, bh)
        out = flat.new_zeros(self.out_features // bh, batch, bh).index_add_(0, self.block_rows, partial)
        out = out.permute(1, 0, 2).reshape(batch, self.out_features)
        return out if self.bias is None else out + self.bias

    def to_dense_weight(self) -> torch.Tensor:
        """The full (out, in) weight with zeros restored, e.g. to go back to an nn.Linear for export."""
        if self.layout == "bsr":
            return torch.sparse_bsr_tensor(
                self.crow_indices, self.col_indices, self.values, (self.out_features, self.in_features),
                check_invariants=True,  # rare call: worth validating buffers that came from a state dict
            ).to_dense()
        bh, bw = self.block
        grid = self.blocks_t.new_zeros(self.out_features // bh, self.in_features // bw, bw, bh)
        grid[self.block_rows, self.block_cols] = self.blocks_t
        return grid.permute(0, 3, 1, 2).reshape(self.out_features, self.in_features)

    def extra_repr(self) -> str:
        bh, bw = self.block
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, block={bh}x{bw}, "
            f"layout={self.layout}, sparsity={self.sparsity:.1%}, bias={self.bias is not None}"
        )


def choose_block_sparse_path(
    linear: nn.Linear, block: tuple[int, int] = (8, 8), batch_hint: int = LARGE_BATCH, min_sparsity: float = 0.75
) -> tuple[bool, str]:
    """Whether `BlockSparseLinear` should beat torch's dense Linear for this layer, and why.

    Rules, all measured on this CPU at one thread (constants above): at least `min_sparsity` of the blocks
    must be zero (FINDINGS: 8x8 at >= 75%); BSR blocks wider than 8 need 90%; below batch 16 only 90%
    sparsity on a layer of >= 512k weights pays. The comparison is against torch eager, the layer this replaces.
    ONNX Runtime's dense kernel is 1.2x-3x faster than torch's here: a 1024x1024 layer at 75% 8x8 blocks is
    1.7x faster than torch dense at batch >= 16 but 0.6x-0.75x of ORT dense; at 90% it beats both
    (benchmarks/block_sparse.py). If the model will be deployed through ORT, ask for min_sparsity=0.9.

    >>> choose_block_sparse_path(nn.Linear(64, 32), (8, 8), batch_hint=64)
    (False, 'block sparsity 0.0% < 75%: the sparse kernel costs more than the work it skips')
    """
    if not isinstance(linear, nn.Linear):
        raise UserError(f"linear: expected an nn.Linear, got {type(linear).__name__}")
    block = _check_block(block)
    _check_batch_hint(batch_hint)
    _check_min_sparsity(min_sparsity)
    weight = linear.weight
    _check_divides(weight, block, "block")
    sparsity = block_sparsity(weight, block)
    bh, bw = block
    layout = default_layout(block)
    seen = f"block sparsity {sparsity:.1%}"
    if _below(sparsity, min_sparsity):
        return False, f"{seen} < {min_sparsity:.0%}: the sparse kernel costs more than the work it skips"
    if layout == "bsr" and max(block) > 8 and _below(sparsity, COARSE_BSR_MIN_SPARSITY):
        return False, f"{seen} < 90% with {bh}x{bw} BSR blocks: torch's BSR kernel only pays there at 90%"
    if batch_hint < LARGE_BATCH:
        if _below(sparsity, SMALL_BATCH_MIN_SPARSITY):
            return False, f"{seen} < 90% at batch {batch_hint}: below batch 16 only 90% pays"
        if weight.numel() < SMALL_BATCH_MIN_WEIGHTS:
            return False, (
                f"{weight.shape[0]}x{weight.shape[1]} is too small at batch {batch_hint}: call overhead dominates"
            )
    return True, f"{seen} >= {min_sparsity:.0%} with {bh}x{bw} blocks at batch {batch_hint}: {layout} layout"


def convert_block_sparse(
    model: nn.Module,
    block: tuple[int, int] = (8, 8),
    min_sparsity: float = 0.75,
    batch_hint: int = LARGE_BATCH,
) -> list[tuple[str, str, str]]:
    """Replace, in place, every nn.Linear for which `choose_block_sparse_path` says the sparse path pays.

    Returns one (layer name, path, reason) per Linear, path being "bsr", "gather" or "dense". Masked layers
    are converted from their masked weight (the mask is baked in; the sparse layer cannot be fine-tuned).
    Layers the block does not divide stay dense (reported), so a classifier head does not stop a model.

    >>> for name, path, reason in convert_block_sparse(model, block=(8, 8), min_sparsity=0.75):
    ...     print(f"{name}: {path} ({reason})")
    fc1: bsr (block sparsity 90.0% >= 75% with 8x8 blocks at batch 16: bsr layout)
    fc2: dense (8x8 blocks do not divide the 10x128 weight)
    """
    if not isinstance(model, nn.Module):
        raise UserError(f"model: expected an nn.Module, got {type(model).__name__}")
    block = _check_block(block)
    _check_min_sparsity(min_sparsity)
    _check_batch_hint(batch_hint)
    report: list[tuple[str, str, str]] = []
    linears = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    for name, linear in linears:
        rows, cols = linear.weight.shape
        if rows % block[0] or cols % block[1]:
            report.append((name, "dense", f"{block[0]}x{block[1]} blocks do not divide the {rows}x{cols} weight"))
            continue
        use_sparse, reason = choose_block_sparse_path(linear, block, batch_hint, min_sparsity)
        if use_sparse and not name:
            use_sparse, reason = False, "the model itself is the Linear: use BlockSparseLinear.from_linear"
        if not use_sparse:
            report.append((name, "dense", reason))
            continue
        sparse = BlockSparseLinear.from_linear(linear, block)
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name), child, sparse)
        report.append((name, sparse.layout, reason))
    return report


def _below(sparsity: float, threshold: float) -> bool:
    # 1 - kept/total is not exact in floating point: exactly 90% of the blocks must count as 90%.
    return sparsity < threshold - 1e-9


def _check_block(block) -> tuple[int, int]:
    if (
        not isinstance(block, (tuple, list))
        or len(block) != 2
        or not all(isinstance(b, int) and not isinstance(b, bool) and b > 0 for b in block)
    ):
        raise UserError(f"block: expected two positive integers (rows, cols), e.g. (8, 8); got {block!r}")
    return (block[0], block[1])


def _check_divides(weight: torch.Tensor, block: tuple[int, int], param: str) -> None:
    rows, cols = weight.shape
    if rows % block[0] or cols % block[1]:
        raise UserError(
            f"{param}: {block[0]}x{block[1]} blocks do not divide the {rows}x{cols} weight; "
            "choose a block shape that divides both sides"
        )


def _check_min_sparsity(min_sparsity) -> None:
    if not isinstance(min_sparsity, (int, float)) or not 0.0 <= min_sparsity <= 1.0:
        raise UserError(f"min_sparsity: expected a fraction in [0, 1], got {min_sparsity!r}")


def _check_batch_hint(batch_hint) -> None:
    if not isinstance(batch_hint, int) or isinstance(batch_hint, bool) or batch_hint < 1:
        raise UserError(f"batch_hint: expected a positive integer (the typical batch size), got {batch_hint!r}")
