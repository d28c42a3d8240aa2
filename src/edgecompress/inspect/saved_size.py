"""The practitioner's sanity check: do the saved file's bytes match the state_dict's tensor bytes?"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from edgecompress.core.measure.params import state_dict_bytes
from edgecompress.core.sizes import format_bytes


@dataclass(frozen=True)
class SavedSizeCheck:
    tensor_bytes: int
    file_bytes: int
    file_label: str
    tensors: int
    explanation: str

    @property
    def overhead(self) -> int:
        return self.file_bytes - self.tensor_bytes


def check_saved_size(model: nn.Module, saved_file: Path | None = None) -> SavedSizeCheck:
    """Compare tensor bytes with a saved file: the user's file if given, else `torch.save(state_dict)` in memory."""
    state = model.state_dict()
    tensor_bytes = state_dict_bytes(model)
    if saved_file is not None:
        file_bytes, label = saved_file.stat().st_size, str(saved_file)
    else:
        buffer = io.BytesIO()
        torch.save(state, buffer)
        file_bytes, label = buffer.tell(), "torch.save(state_dict)"
    container = _container(saved_file)
    return SavedSizeCheck(tensor_bytes, file_bytes, label, len(state), _explain(state, tensor_bytes, file_bytes, container))


def _container(saved_file: Path | None) -> tuple[str, str]:
    """What a file holds besides the tensor bytes, and its padding: safetensors has a JSON header, torch.save
    a zip of pickled metadata."""
    if saved_file is not None and saved_file.suffix == ".safetensors":
        return "the safetensors JSON header of tensor names, dtypes, shapes and offsets", ""
    return "the zip container and pickle metadata", ", plus 64-byte alignment"


def _explain(state: dict, tensor_bytes: int, file_bytes: int, container: tuple[str, str]) -> str:
    diff = file_bytes - tensor_bytes
    masks = [k for k in state if k.endswith("_mask")]
    if masks:
        return (
            f"{len(masks)} pruning masks (torch.nn.utils.prune) are stored beside the original weights: "
            "masks make the file bigger, not smaller; remove them (prune.remove) and store sparse weights compactly"
        )
    if diff < 0:
        return f"the file is {format_bytes(-diff)} smaller than the tensors: it is compressed or holds only part of them"
    per_tensor = diff / max(1, len(state))
    if diff <= 0.05 * tensor_bytes + 2048 + 1024 * len(state):
        what, padding = container
        return f"the file holds every tensor densely; the extra {format_bytes(diff)} is {what} (~{per_tensor:.0f} B per tensor{padding})"
    return (
        f"the file is {format_bytes(diff)} larger than its tensors: it holds more than this state_dict "
        "(optimizer state, a pickled module, or tensors saved as views of larger storages)"
    )
