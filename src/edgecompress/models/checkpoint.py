"""Save and reload a compressed PyTorch model without pickle: safetensors weights + layer shapes as metadata.

A pruned model has new shapes (Torch-Pruning removed channels), so the original architecture's state_dict
no longer fits it, and `torch.save(model)` would need unpickling to load. Instead we store each layer's
changed constructor sizes beside the weights and resize a freshly built architecture before loading.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from edgecompress.errors import UserError
from edgecompress.files import atomic_path
from edgecompress.prune.masks import finalized_copy, get_mask, masked_modules, set_mask

_SIZE_FIELDS = {
    nn.Linear: ("in_features", "out_features"),
    nn.Conv1d: ("in_channels", "out_channels", "groups"),
    nn.Conv2d: ("in_channels", "out_channels", "groups"),
    nn.Conv3d: ("in_channels", "out_channels", "groups"),
    nn.BatchNorm1d: ("num_features",),
    nn.BatchNorm2d: ("num_features",),
    nn.LayerNorm: ("normalized_shape",),
    nn.Embedding: ("num_embeddings", "embedding_dim"),
}


MASK_PREFIX = "edgecompress.mask:"


def save_model_file(model: nn.Module, path: str | Path, arch: str | None = None, keep_masks: bool = False) -> Path:
    """Write `model`'s weights (masks baked in) and layer sizes to a .safetensors file, atomically.

    `arch` (a built-in name or module:function) lets `load_model(path)` rebuild the model alone.
    `keep_masks` also stores the pruning masks, so a checkpoint can resume fine-tuning with them held.
    """
    plain = finalized_copy(model)
    sizes = {
        name: {field: _jsonable(getattr(module, field)) for field in fields}
        for name, module in plain.named_modules()
        for kind, fields in _SIZE_FIELDS.items()
        if type(module) is kind
    }
    metadata = {"edgecompress.layer_sizes": json.dumps(sizes, sort_keys=True)}
    if arch:
        metadata["edgecompress.arch"] = arch
    tensors = {k: v.detach().contiguous().clone() for k, v in plain.state_dict().items()}
    if keep_masks:
        tensors.update({f"{MASK_PREFIX}{name}": get_mask(m).clone() for name, m in masked_modules(model).items()})
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
        _sort_metadata(tmp)
    return Path(path)


def _sort_metadata(path: Path) -> None:
    """Rewrite the file's header with its metadata keys sorted: safetensors writes them in a per-process hash
    order, so two identical runs would otherwise give different bytes."""
    with open(path, "r+b") as handle:
        length = int.from_bytes(handle.read(8), "little")
        header = json.loads(handle.read(length))
        if "__metadata__" not in header:
            return
        header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
        text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
        if len(text) <= length:  # always: the same keys and values, as compactly written as safetensors writes them
            handle.seek(8)
            handle.write(text.ljust(length))  # the format allows trailing spaces; the data offsets are unchanged


def read_metadata(path: str | Path) -> dict[str, str]:
    with safe_open(str(path), framework="pt") as handle:
        return handle.metadata() or {}


def resize_to_saved(model: nn.Module, path: str | Path) -> nn.Module:
    """Give every layer of a freshly built `model` the sizes saved in `path`, then load the weights."""
    sizes = json.loads(read_metadata(path).get("edgecompress.layer_sizes", "{}"))
    modules = dict(model.named_modules())
    for name, fields in sizes.items():
        module = modules.get(name)
        if module is None:
            raise UserError(f"weights: {path} has layer {name!r}, which the architecture does not have")
        for field, value in fields.items():
            setattr(module, field, tuple(value) if isinstance(value, list) else value)
    from safetensors.torch import load_file

    saved = load_file(str(path))
    masks = {k[len(MASK_PREFIX) :]: v for k, v in saved.items() if k.startswith(MASK_PREFIX)}
    state = {k: v for k, v in saved.items() if not k.startswith(MASK_PREFIX)}
    for key, tensor in state.items():
        owner_name, _, attr = key.rpartition(".")
        owner = modules.get(owner_name)
        current = getattr(owner, attr, None) if owner is not None else None
        if isinstance(current, torch.Tensor) and current.shape != tensor.shape:
            replacement = torch.empty_like(tensor, dtype=current.dtype)
            if isinstance(current, nn.Parameter):
                setattr(owner, attr, nn.Parameter(replacement, requires_grad=current.requires_grad))
            else:
                owner.register_buffer(attr, replacement)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise UserError(f"weights: {path} does not fit the architecture: {first}") from None
    for name, mask in masks.items():
        set_mask(modules[name], mask != 0)
    return model


def _jsonable(value):
    return list(value) if isinstance(value, tuple) else value
