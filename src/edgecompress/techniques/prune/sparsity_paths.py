"""Which path each pruned layer takes to be smaller or faster, and why: the per-layer answer for metrics.json.

Zeros alone make nothing faster (FINDINGS sec. 1). A layer pays only through one of:
- "structured": rows/channels physically removed; a smaller dense matrix, faster in every runtime;
- "block-sparse": whole 8x8 (or larger) blocks removed at >= 75% and run by `BlockSparseLinear` in torch
  (`convert_block_sparse`); the decision is `choose_block_sparse_path`'s, measured on this CPU;
- "sparse-kernel": single zeros in a Linear at >= 90% (>= 95% below batch 16), run by `CsrLinear` in torch
  (`convert_csr`); the decision is `choose_csr_path`'s, measured on this CPU;
- "dense": everything else, with the reason. Unstructured sparsity below 90% has no kernel that beats dense
  here (torch CSR breaks even at 70-95%), ONNX Runtime has no sparse kernel at all, and N:M has no CPU
  kernel: these run dense and pay only in the packed file's size.

>>> paths = sparsity_paths(original, pruned, Prune(pattern=Blocks(8, 8), amount=0.9))  # doctest: +SKIP
>>> paths["fc1"]["path"], paths["fc1"]["reason"]  # doctest: +SKIP
('block-sparse', 'block sparsity 90.0% >= 75% with 8x8 blocks at batch 16: bsr layout ...')
"""

from __future__ import annotations

from torch import nn

from edgecompress.techniques.prune.block_sparse import LARGE_BATCH, choose_block_sparse_path
from edgecompress.techniques.prune.csr_sparse import choose_csr_path
from edgecompress.techniques.prune.patterns import NM, Blocks
from edgecompress.techniques.prune.recurrent import recurrent_modules, recurrent_weights
from edgecompress.techniques.prune.selection import LAYER_TYPES

BLOCK_MIN_SPARSITY = 0.75  # FINDINGS sec. 2 / the issue: 8x8 blocks at >= 75%
DENSE_RUNTIME = "ONNX Runtime runs it dense; the zeros pay only in the packed file's size"


def sparsity_paths(before: nn.Module, after: nn.Module, config, batch_hint: int = LARGE_BATCH) -> dict[str, dict]:
    """For every Linear/conv layer of `after` that pruning changed: its path, zero fraction, shape and reason.

    `before` is the model as it was before the prune stage (same layer names); `config` the `Prune` config.
    """
    original = {name: module for name, module in before.named_modules() if isinstance(module, tuple(LAYER_TYPES.values()))}
    out = {}
    for name, layer in after.named_modules():
        if name not in original or not isinstance(layer, tuple(LAYER_TYPES.values())):
            continue
        old_shape, shape = tuple(original[name].weight.shape), tuple(layer.weight.shape)
        sparsity = float((layer.weight.detach() == 0).float().mean())
        if old_shape == shape and sparsity == 0.0:
            continue
        path, reason = _path(layer, old_shape, shape, sparsity, config, batch_hint)
        out[name] = {"path": path, "sparsity": round(sparsity, 6), "shape": list(shape), "reason": reason}
    out.update(_recurrent_paths(before, after, config))
    return out


def _recurrent_paths(before: nn.Module, after: nn.Module, config) -> dict[str, dict]:
    """Recurrent layers: hidden units removed (structured), else each weight matrix with zeros (dense)."""
    original = recurrent_modules(before)
    out = {}
    for name, layer in recurrent_modules(after).items():
        if name not in original:
            continue
        old_units, units = original[name].hidden_size, layer.hidden_size
        if units != old_units:
            out[name] = {
                "path": "structured", "sparsity": 0.0, "shape": [units],
                "reason": f"{old_units} -> {units} hidden units: every gate's rows, the recurrent columns and the next "
                          f"layer's inputs removed; a smaller dense {type(layer).__name__}, faster in every runtime",
            }
            continue
        for weight_name, weight in recurrent_weights(name, layer).items():
            sparsity = float((weight.weight.detach() == 0).float().mean())
            if sparsity:
                pattern = config.pattern
                kind = f"{pattern.n}:{pattern.m} sparsity" if isinstance(pattern, NM) else f"{sparsity:.1%} zeros"
                out[weight_name] = {
                    "path": "dense", "sparsity": round(sparsity, 6), "shape": list(weight.weight.shape),
                    "reason": f"{kind} in a {type(layer).__name__} weight: no sparse recurrent kernel; {DENSE_RUNTIME}",
                }
    return out


def _path(layer, old_shape, shape, sparsity, config, batch_hint) -> tuple[str, str]:
    if old_shape != shape:
        kept = (shape[0] * _inputs(shape)) / (old_shape[0] * _inputs(old_shape))
        return "structured", (
            f"{_matrix(old_shape)} -> {_matrix(shape)} weight: a physically smaller dense matrix, "
            f"{kept:.0%} of the weights and MACs, faster in every runtime"
        )
    masked_path = MASKED_PATHS.get(type(config.pattern), _unstructured_path)
    return masked_path(layer, config.pattern, sparsity, batch_hint)


def _block_path(layer, pattern: Blocks, sparsity: float, batch_hint: int) -> tuple[str, str]:
    if not isinstance(layer, nn.Linear):
        return "dense", f"{sparsity:.1%} zeros in blocks, but there is no block-sparse kernel for convolutions; {DENSE_RUNTIME}"
    use, reason = choose_block_sparse_path(layer, pattern.block, batch_hint, BLOCK_MIN_SPARSITY)
    if use:
        return "block-sparse", f"{reason} in torch (convert_block_sparse); the ONNX file runs it dense"
    return "dense", reason


def _nm_path(layer, pattern: NM, sparsity: float, batch_hint: int) -> tuple[str, str]:
    return "dense", f"{pattern.n}:{pattern.m} sparsity needs sparse tensor cores (GPU); no CPU kernel gains; {DENSE_RUNTIME}"


def _unstructured_path(layer, pattern, sparsity: float, batch_hint: int) -> tuple[str, str]:
    seen = f"{sparsity:.1%} zeros"
    if not isinstance(layer, nn.Linear):
        return "dense", f"{seen}, but there is no sparse kernel for convolutions here; {DENSE_RUNTIME}"
    use, reason = choose_csr_path(layer, batch_hint)
    if use:
        return "sparse-kernel", f"{reason} in torch (convert_csr); the ONNX file runs it dense"
    return "dense", f"{reason}; {DENSE_RUNTIME}"


# the masked patterns that have a path of their own; every other pattern is judged as unstructured zeros
MASKED_PATHS = {Blocks: _block_path, NM: _nm_path}


def _inputs(shape: tuple[int, ...]) -> int:
    size = 1
    for side in shape[1:]:
        size *= side
    return size


def _matrix(shape: tuple[int, ...]) -> str:
    return f"{shape[0]}x{_inputs(shape)}"
