"""Making unstructured sparsity pay: run a very sparse Linear with torch's CSR kernel.

Single zeros only pay at high sparsity. Measured on the project's CPU (1 thread, torch CSR `addmm` vs torch
dense `F.linear`, 1024x1024 and 384x1536, speedup at batch 1 / 16 / 256):
70%: 0.2x / 1.0-1.2x / 0.7-0.8x; 90%: 0.74x / 2.5-2.9x / 4-7x; 95%: 1.3-1.5x / 4.2-4.7x / 12-15x
(FINDINGS sec. 2: CSR breaks even at 70-95%). Small layers lose to call overhead: 128x256 at 90% is
0.41x / 0.98x / 1.85x, 256x512 0.52x / 1.75x / 2.27x. So the CSR path is taken from 90% at batch >= 16 on
layers of >= 128k weights (smaller ones from batch 256), and below batch 16 only from 95% on >= 512k weights. Like `BlockSparseLinear` it is a torch inference form: buffers, no backward, no ONNX export (ONNX
Runtime has no sparse kernel; export the dense model instead). `F.linear` is the wrong call for a CSR weight
(slow, and fails under `torch.inference_mode`); `addmm` with the sparse matrix on the left is fast.

>>> sparse = CsrLinear.from_linear(pruned_linear)  # doctest: +SKIP
>>> report = convert_csr(model, min_sparsity=0.9, batch_hint=16)  # whole model, in place  # doctest: +SKIP
"""

from __future__ import annotations

import torch
from torch import nn

from edgecompress.core.errors import UserError
from edgecompress.core.verbosity import quiet_libraries
from edgecompress.techniques.prune.block_sparse import LARGE_BATCH, _check_batch_hint, _check_min_sparsity

MIN_SPARSITY = 0.9  # 2.5-4x at batch >= 16; 70% is 0.7x-1.2x
SMALL_BATCH_MIN_SPARSITY = 0.95  # at batch 1, 90% is 0.74x and 95% 1.3x-1.5x
MIN_WEIGHTS = 1 << 17  # 256x512 at 90%, batch 16: 1.75x; 128x256: 0.98x (needs batch 256: 1.85x)
SMALL_BATCH_MIN_WEIGHTS = 1 << 19  # below batch 16 only large layers (384x1536, 1024x1024) gain
HUGE_BATCH = 256


class CsrLinear(nn.Module):
    """A Linear storing only its non-zero weights (CSR); same output as the dense layer, inference only.

    >>> CsrLinear.from_linear(nn.Linear(64, 32)).nnz  # nothing pruned: every weight stored  # doctest: +SKIP
    2048
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None):
        super().__init__()
        if weight.dim() != 2 or not weight.is_floating_point():
            raise UserError(f"weight: expected a 2-D floating-point matrix, got {weight.dim()}-D {weight.dtype}")
        weight = weight.detach()
        self.out_features, self.in_features = weight.shape
        self.sparsity = float((weight == 0).float().mean())
        with quiet_libraries(warnings=(".*Sparse CSR tensor support is in beta",)):  # the path used here is tested
            csr = weight.to_sparse_csr()
        # plain buffers, rebuilt into a CSR tensor per call: they follow `.to()`, deepcopy and state dicts
        self.register_buffer("crow_indices", csr.crow_indices().clone())
        self.register_buffer("col_indices", csr.col_indices().clone())
        self.register_buffer("values", csr.values().clone())
        self.register_buffer("bias", None if bias is None else bias.detach().clone())

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> "CsrLinear":
        """Sparse copy of `linear`; a masked (parametrized) layer contributes its masked weight."""
        if not isinstance(linear, nn.Linear):
            raise UserError(f"linear: expected an nn.Linear, got {type(linear).__name__}")
        return cls(linear.weight, linear.bias)

    @property
    def nnz(self) -> int:
        return self.values.numel()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features)
        if flat.requires_grad and torch.is_grad_enabled():
            raise UserError(
                "x: CsrLinear is inference-only; call it under torch.no_grad() or torch.inference_mode(), "
                "or detach the input"
            )
        weight = torch.sparse_csr_tensor(
            self.crow_indices, self.col_indices, self.values, (self.out_features, self.in_features),
            check_invariants=False,  # built by `to_sparse_csr` above; checking costs time on every call
        )
        out = torch.mm(weight, flat.t()) if self.bias is None else torch.addmm(self.bias.unsqueeze(1), weight, flat.t())
        return out.t().reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, sparsity={self.sparsity:.1%}"


def choose_csr_path(linear: nn.Linear, batch_hint: int = LARGE_BATCH, min_sparsity: float = MIN_SPARSITY) -> tuple[bool, str]:
    """Whether `CsrLinear` should beat torch's dense Linear for this layer, and why (thresholds in the module doc).

    >>> choose_csr_path(nn.Linear(64, 32))
    (False, 'unstructured sparsity 0.0% < 90%: torch CSR breaks even only at 70-95% on this CPU')
    """
    if not isinstance(linear, nn.Linear):
        raise UserError(f"linear: expected an nn.Linear, got {type(linear).__name__}")
    _check_batch_hint(batch_hint)
    _check_min_sparsity(min_sparsity)
    weight = linear.weight.detach()
    zeros, total = int((weight == 0).sum()), weight.numel()
    seen = f"unstructured sparsity {zeros / total:.1%}"

    def below(threshold: float) -> bool:  # the engine prunes round(amount x n): that count is "at" the amount
        return zeros < round(threshold * total)

    if below(min_sparsity):
        return False, f"{seen} < {min_sparsity:.0%}: torch CSR breaks even only at 70-95% on this CPU"
    if batch_hint < LARGE_BATCH and below(SMALL_BATCH_MIN_SPARSITY):
        return False, f"{seen} < 95% at batch {batch_hint}: below batch 16 torch CSR is slower than dense at 90%"
    rows, cols = weight.shape
    small = f"{rows}x{cols} is too small at batch {batch_hint}: call overhead eats the skipped work"
    if batch_hint < LARGE_BATCH and total < SMALL_BATCH_MIN_WEIGHTS:
        return False, small
    if batch_hint < HUGE_BATCH and total < MIN_WEIGHTS:
        return False, small
    return True, f"{seen} >= {min_sparsity:.0%} at batch {batch_hint}: torch CSR (2.5x-15x vs torch dense, measured)"


def convert_csr(model: nn.Module, min_sparsity: float = MIN_SPARSITY, batch_hint: int = LARGE_BATCH) -> list[tuple[str, str, str]]:
    """Replace, in place, every nn.Linear for which `choose_csr_path` says CSR pays; one (name, path, reason) each.

    path is "csr" or "dense". Masked layers are converted from their masked weight (no more fine-tuning).
    """
    if not isinstance(model, nn.Module):
        raise UserError(f"model: expected an nn.Module, got {type(model).__name__}")
    _check_min_sparsity(min_sparsity)
    _check_batch_hint(batch_hint)
    report = []
    for name, linear in [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]:
        use, reason = choose_csr_path(linear, batch_hint, min_sparsity)
        if use and not name:
            use, reason = False, "the model itself is the Linear: use CsrLinear.from_linear"
        if use:
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent), child, CsrLinear.from_linear(linear))
        report.append((name, "csr" if use else "dense", reason))
    return report
