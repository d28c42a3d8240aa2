"""Stage checkpoints: what a finished stage leaves behind so that `--resume` can skip it.

Each stage writes its model (`checkpoints/NN-name.safetensors`, masks included) and then, last, its
measurement with a fingerprint of everything that produced it (`checkpoints/NN-name.json`). A stage is
resumed only if its JSON exists, its fingerprint matches the current run's, and its files are whole.
A checkpoint is read as untrusted input: the model is rebuilt from the run's own architecture (the one the
user named), never from the file's metadata, and the ONNX file a record names must lie inside the run.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import torch
from torch import nn

from edgecompress.core.errors import UserError
from edgecompress.core.models.checkpoint import resize_to_saved, save_model_file
from edgecompress.storage.files import atomic_write_text
from edgecompress.storage.rundir import mark_reused
from edgecompress.untrusted.onnx_files import check_onnx_file
from edgecompress.untrusted.paths import confined

CHECKPOINT_DIR = "checkpoints"


def fingerprint(*parts) -> str:
    """A stable hash of JSON-able parts (configs, names, seeds, earlier fingerprints)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def model_fingerprint(model: nn.Module) -> str:
    """Hash of a model's weights: a resumed run must start from the same model."""
    digest = hashlib.sha256()
    for key, tensor in sorted(model.state_dict().items()):
        digest.update(key.encode())
        digest.update(tensor.detach().contiguous().cpu().numpy().tobytes())
    return digest.hexdigest()


def save_checkpoint(out: Path, key: str, fp: str, record: dict, torch_model: nn.Module | None) -> None:
    folder = out / CHECKPOINT_DIR
    if torch_model is not None:
        save_model_file(torch_model, folder / f"{key}.safetensors", keep_masks=True)
    atomic_write_text(folder / f"{key}.json", json.dumps({"fingerprint": fp, "has_torch": torch_model is not None, **record}))


def load_checkpoint(out: Path, key: str, fp: str, template: nn.Module) -> tuple[dict, nn.Module | None] | None:
    """(record, torch model or None) of a finished stage, or None when it must be (re)computed.

    Anything wrong with a checkpoint (unreadable, foreign, damaged, not fitting the model) means "not finished":
    the stage is computed again. Its files are never unpickled.
    """
    folder = out / CHECKPOINT_DIR
    try:
        record = json.loads((folder / f"{key}.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("fingerprint") != fp:
        return None
    artifact = record.get("artifact")
    if artifact is not None:
        size = record.get("artifact_bytes")
        path = confined(out, artifact) if isinstance(artifact, str) else None  # a file of this run, even via a link
        if path is None or not isinstance(size, int) or not path.is_file() or path.stat().st_size != size:
            return None
        try:
            check_onnx_file(path)  # what later stages, timing and packing read: under the limits of any ONNX file
        except UserError:
            return None
    model = None
    weights = folder / f"{key}.safetensors"
    if record.get("has_torch"):
        try:
            with torch.no_grad():
                model = resize_to_saved(copy.deepcopy(template), weights).eval()
        except Exception:  # a damaged or swapped file of ours: recompute the stage
            return None
    mark_reused(folder / f"{key}.json", *([weights] if model is not None else []), *([out / artifact] if artifact else []))
    return record, model


def _whole(out: Path, artifact, size) -> bool:
    path = out / str(artifact)
    return isinstance(artifact, str) and isinstance(size, int) and path.is_file() and path.stat().st_size == size
