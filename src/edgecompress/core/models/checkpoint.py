"""Save and reload a compressed PyTorch model without pickle: safetensors weights + layer shapes as metadata.

A pruned model has new shapes (Torch-Pruning removed channels), so the original architecture's state_dict
no longer fits it, and `torch.save(model)` would need unpickling to load. Instead we store each layer's
changed constructor sizes beside the weights and resize a freshly built architecture before loading.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import torch
from pydantic import Field, TypeAdapter, ValidationError
from safetensors.torch import save_file
from torch import nn

from edgecompress.core.errors import UserError
from edgecompress.core.masks import finalized_copy, get_mask, masked_weights, set_mask
from edgecompress.core.models.metadata_arch import ARCH_KEY
from edgecompress.core.models.module_lists import keep_entries, original_positions, shortened_lists
from edgecompress.storage.files import atomic_path
from edgecompress.untrusted.quoting import quote
from edgecompress.untrusted.safetensors_files import load_safetensors, read_safetensors_header

_SIZE_FIELDS = {
    nn.Linear: ("in_features", "out_features"),
    nn.Conv1d: ("in_channels", "out_channels", "groups"),
    nn.Conv2d: ("in_channels", "out_channels", "groups"),
    nn.Conv3d: ("in_channels", "out_channels", "groups"),
    nn.BatchNorm1d: ("num_features",),
    nn.BatchNorm2d: ("num_features",),
    nn.LayerNorm: ("normalized_shape",),
    nn.Embedding: ("num_embeddings", "embedding_dim"),
    **dict.fromkeys((nn.GRU, nn.LSTM, nn.RNN), ("input_size", "hidden_size")),  # hidden units removed by pruning
}


MASK_PREFIX = "edgecompress.mask:"
LAYER_SIZES_KEY = "edgecompress.layer_sizes"
KEPT_ENTRIES_KEY = "edgecompress.kept_entries"  # ModuleLists that lost entries: the original positions left
_SIZE = Annotated[int, Field(strict=True, gt=0, le=2**31)]
_LAYER_SIZES = TypeAdapter(dict[str, dict[str, _SIZE | list[_SIZE]]])
_KEPT_ENTRIES = TypeAdapter(dict[str, list[Annotated[int, Field(strict=True, ge=0, le=2**31)]]])


def save_model_file(model: nn.Module, path: str | Path, arch: str | None = None, keep_masks: bool = False) -> Path:
    """Write `model`'s weights (masks baked in) and layer sizes to a .safetensors file, atomically.

    `arch` (a built-in name or module:function) lets `load_model(path)` rebuild the model alone (a
    module:function only with the user's consent again: see `metadata_arch.py`).
    `keep_masks` also stores the pruning masks, so a checkpoint can resume fine-tuning with them held.
    """
    plain = finalized_copy(model)
    sizes = {
        name: {field: _jsonable(getattr(module, field)) for field in fields}
        for name, module in plain.named_modules()
        for kind, fields in _SIZE_FIELDS.items()
        if type(module) is kind
    }
    metadata = {LAYER_SIZES_KEY: json.dumps(sizes, sort_keys=True)}
    shortened = shortened_lists(plain)
    if shortened:
        metadata[KEPT_ENTRIES_KEY] = json.dumps(shortened, sort_keys=True)
    if arch:
        metadata[ARCH_KEY] = arch
    tensors = {k: v.detach().contiguous().clone() for k, v in plain.state_dict().items()}
    if keep_masks:
        tensors.update({f"{MASK_PREFIX}{key}": get_mask(m, p).clone() for key, (m, p) in masked_weights(model).items()})
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
    """The metadata of a checked safetensors file (see `edgecompress.untrusted.safetensors_files`)."""
    return read_safetensors_header(path, "weights").metadata


def resize_to_saved(model: nn.Module, path: str | Path, field: str = "weights") -> nn.Module:
    """Give every layer of a freshly built `model` the sizes saved in `path`, then load the weights.

    Entries a ModuleList lost (whole layers removed) are dropped from `model`'s list first. Only the
    constructor sizes of `_SIZE_FIELDS` are set, and only as positive integers: the metadata is as
    untrusted as the rest of the file. The architecture comes from the caller, never from the metadata. A model
    with an `after_resize()` method re-derives from the new shapes what else it keeps (e.g. head counts)."""
    saved, metadata = load_safetensors(path, field)
    _drop_lost_entries(model, metadata.get(KEPT_ENTRIES_KEY, "{}"), path, field)
    modules = dict(model.named_modules())
    sizes = _layer_sizes(metadata.get(LAYER_SIZES_KEY, "{}"), path, field)
    for name, fields in sizes.items():
        module = modules.get(name)
        if module is None:
            raise UserError(f"{field}: {path} has layer {quote(name)}, which the architecture does not have")
        allowed = _SIZE_FIELDS.get(type(module), ())
        for size_field, value in fields.items():
            if size_field not in allowed or isinstance(value, list) != (size_field == "normalized_shape"):
                raise UserError(f"{field}: {path} has malformed {LAYER_SIZES_KEY} metadata: {quote(size_field)} = "
                                f"{quote(value)} for layer {quote(name)} ({type(module).__name__}: {', '.join(allowed) or 'no sizes'})")
            setattr(module, size_field, tuple(value) if isinstance(value, list) else value)
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
        raise UserError(f"{field}: {path} does not fit the architecture: {first[:300]}") from None
    for name in sizes:
        expected = _shape_from_sizes(modules[name])
        if expected is not None and tuple(modules[name].weight.shape) != expected:
            raise UserError(f"{field}: {path} has malformed {LAYER_SIZES_KEY} metadata: the sizes of layer {quote(name)} "
                            f"give a weight of {expected}, its weight is {tuple(modules[name].weight.shape)}")
    for name, mask in masks.items():
        module, param = _mask_owner(modules, name)
        if module is None or not isinstance(getattr(module, param, None), torch.Tensor) or getattr(module, param).shape != mask.shape:
            raise UserError(f"{field}: {path} has a mask for {quote(name)} that fits no weight of the architecture")
        set_mask(module, mask != 0, param)
    after_resize = getattr(model, "after_resize", None)
    if callable(after_resize):  # a model whose structure also lives in attributes (a decoder's head counts)
        after_resize()
    return model


def _drop_lost_entries(model: nn.Module, text: str, path, field: str) -> None:
    """Drop from `model`'s ModuleLists the entries the saved model had lost, as the metadata lists them."""
    try:
        kept_entries = _KEPT_ENTRIES.validate_json(text)
    except ValidationError as exc:
        raise UserError(f"{field}: {path} has malformed {KEPT_ENTRIES_KEY} metadata: {exc.errors()[0]['msg'][:120]}") from None
    modules = dict(model.named_modules())
    for name, kept in kept_entries.items():
        entries = modules.get(name)
        have = original_positions(entries) if isinstance(entries, nn.ModuleList) else []
        if not kept or kept != sorted(set(kept)) or not set(kept) <= set(have):
            raise UserError(f"{field}: {path} has malformed {KEPT_ENTRIES_KEY} metadata: {quote(name)} keeps entries "
                            f"{quote(kept)}, which the architecture's {'list' if have else 'model'} cannot give")
        keep_entries(entries, [have.index(position) for position in kept])


def _mask_owner(modules: dict[str, nn.Module], key: str) -> tuple[nn.Module | None, str]:
    """A mask's key -> (module, parameter): `<module>` masks its weight, `<module>.<param>` another weight
    (a recurrent layer's weight_hh_l0, ...); see `masks.masked_weights`."""
    if key in modules:
        return modules[key], "weight"
    owner, _, param = key.rpartition(".")
    if owner in modules and param.startswith("weight"):
        return modules[owner], param
    return None, "weight"


def _layer_sizes(text: str, path, field: str) -> dict:
    try:
        return _LAYER_SIZES.validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"][:3])
        raise UserError(f"{field}: {path} has malformed {LAYER_SIZES_KEY} metadata: {where or 'JSON'}: {first['msg'][:120]}") from None


def _shape_from_sizes(module: nn.Module) -> tuple | None:
    """The weight shape a layer's constructor sizes imply (None: no weight to compare); () never matches."""
    if isinstance(module, nn.Linear):
        return (module.out_features, module.in_features)
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        if module.in_channels % module.groups or module.out_channels % module.groups:
            return ()
        return (module.out_channels, module.in_channels // module.groups, *module.kernel_size)
    if isinstance(module, nn.Embedding):
        return (module.num_embeddings, module.embedding_dim)
    if isinstance(module, nn.LayerNorm) and module.elementwise_affine:
        return tuple(module.normalized_shape)
    if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)) and module.affine:
        return (module.num_features,)
    return None


def _jsonable(value):
    return list(value) if isinstance(value, tuple) else value
