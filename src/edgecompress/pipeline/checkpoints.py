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
from safetensors import SafetensorError
from torch import nn

from edgecompress.errors import UserError
from edgecompress.files import atomic_write_text
from edgecompress.models.checkpoint import resize_to_saved, save_model_file
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
    """(record, torch model or None) of a finished stage, or None when it must be (re)computed."""
    folder = out / CHECKPOINT_DIR
    try:
        record = json.loads((folder / f"{key}.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("fingerprint") != fp:
        return None
    artifact = record.get("artifact")
    if artifact is not None:
        path = confined(out, artifact)  # a record names a file of this run: never one outside it, even via a link
        if path is None or not path.is_file() or path.stat().st_size != record.get("artifact_bytes"):
            return None
        try:
            check_onnx_file(path)  # what later stages, timing and packing read: under the limits of any ONNX file
        except UserError:
            return None
    model = None
    if record.get("has_torch"):
        weights = folder / f"{key}.safetensors"
        if not weights.is_file():
            return None
        try:
            with torch.no_grad():
                model = resize_to_saved(copy.deepcopy(template), weights).eval()
        except (SafetensorError, UserError, OSError):
            return None  # not a safetensors file we wrote (corrupt or swapped): recompute, never unpickle
    return record, model


def clear_checkpoints(out: Path) -> None:
    """A fresh (not resumed) run starts without any earlier run's stage files."""
    for folder in (out / CHECKPOINT_DIR, out / "stages"):
        if folder.is_dir():
            for file in folder.iterdir():
                if file.is_file():
                    file.unlink()
