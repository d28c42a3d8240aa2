"""The practitioner's sanity check: do the saved file's bytes match the state_dict's tensor bytes?"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from edgecompress.core.measure.params import state_dict_bytes
from edgecompress.core.sizes import format_bytes
from edgecompress.untrusted.quoting import quote
from edgecompress.untrusted.safetensors_files import DTYPE_BYTES, SafetensorsHeader, read_safetensors_header


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
    if saved_file is not None and saved_file.suffix == ".safetensors":
        explanation = _explain_safetensors(state, tensor_bytes, file_bytes, read_safetensors_header(saved_file, "model"))
    else:
        explanation = _explain(state, tensor_bytes, file_bytes)
    return SavedSizeCheck(tensor_bytes, file_bytes, label, len(state), explanation)


def _explain_safetensors(state: dict, tensor_bytes: int, file_bytes: int, header: SafetensorsHeader) -> str:
    """A safetensors file is an 8-byte length, a JSON header (each tensor's name, dtype, shape and offsets, and
    string metadata) and the tensors' bytes back to back: no container, no pickle, no compression."""
    stored = {name: math.prod(shape) * DTYPE_BYTES[dtype] for name, (dtype, shape) in header.shapes.items()}
    data_bytes = sum(stored.values())
    framing = file_bytes - data_bytes  # the library checks that the tensors' offsets cover the rest exactly
    metadata = f", and metadata: {', '.join(sorted(header.metadata))}" if header.metadata else ""
    framed = (f"safetensors' 8-byte length and its {framing - 8:,} B JSON header (the names, dtypes, shapes and offsets "
              f"of {len(stored)} tensors{metadata})")
    if data_bytes == tensor_bytes and stored.keys() == state.keys():
        return f"the file holds every tensor densely ({data_bytes:,} B); the other {framing:,} B are {framed}"
    model_bytes = {name: t.numel() * t.element_size() for name, t in state.items()}
    converted = sorted({header.shapes[n][0] for n in stored.keys() & model_bytes.keys() if stored[n] != model_bytes[n]})
    extra, missing = sorted(stored.keys() - model_bytes.keys()), sorted(model_bytes.keys() - stored.keys())
    reasons = [f"tensors stored as {'/'.join(converted)}, converted to the model's dtypes on loading"] if converted else []
    if extra:
        reasons.append(f"{len(extra):,} tensors the model does not have (e.g. {quote(extra[0])})")
    if missing:
        reasons.append(f"{len(missing):,} of the model's tensors are not in the file (e.g. {quote(missing[0])})")
    why = "; ".join(reasons) or "tensors of other sizes"
    return f"its tensor data is {data_bytes:,} B, the model's {tensor_bytes:,} B: {why}; the other {framing:,} B are {framed}"


def _explain(state: dict, tensor_bytes: int, file_bytes: int) -> str:
    """A torch.save file: a zip archive of pickled metadata and one entry per tensor storage, 64-byte aligned."""
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
        return (f"the file holds every tensor densely; the extra {format_bytes(diff)} is the zip container and pickle "
                f"metadata (~{per_tensor:.0f} B per tensor, plus 64-byte alignment)")
    return (
        f"the file is {format_bytes(diff)} larger than its tensors: it holds more than this state_dict "
        "(optimizer state, a pickled module, or tensors saved as views of larger storages)"
    )
