"""Stage checkpoints: what a finished stage leaves behind so that `--resume` can skip it.

Each stage writes its model (`checkpoints/NN-name.safetensors`, masks included) and then, last, its
measurement as a record of the run's TrialStore (`checkpoints/NN-name.json`, with a fingerprint of
everything that produced it; see `orchestration/trials/store.py`). A stage is resumed only if the store
accepts its record (fingerprint, JSON types) and its files are whole. A checkpoint is read as untrusted input:
the model is rebuilt from the run's own architecture (the one the user named), never from the file's metadata,
and the ONNX file a record names must lie inside the run and pass the limits of any ONNX file.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from edgecompress.core.errors import UserError
from edgecompress.core.models.checkpoint import resize_to_saved, save_model_file
from edgecompress.orchestration.trials.store import TrialStore, fingerprint, model_fingerprint
from edgecompress.storage.rundir import mark_reused
from edgecompress.untrusted.onnx_files import check_onnx_file
from edgecompress.untrusted.paths import confined

__all__ = ["CHECKPOINT_DIR", "fingerprint", "load_checkpoint", "model_fingerprint", "save_checkpoint"]

CHECKPOINT_DIR = "checkpoints"
RECORD = {"has_torch": bool}
# a stage's measurement (Measurement.to_json): a field that is there must have its JSON type
MEASUREMENT = {"name": str, "score": float, "artifact": (str, type(None)), "artifact_bytes": int, "params": int,
               "nonzero_params": int, "macs": int, "seconds": float, "config": dict}


def _store(out: Path) -> TrialStore:
    return TrialStore(out, f"{CHECKPOINT_DIR}/{{key}}.json")


def save_checkpoint(out: Path, key: str, fp: str, record: dict, torch_model: nn.Module | None) -> None:
    if torch_model is not None:
        save_model_file(torch_model, out / CHECKPOINT_DIR / f"{key}.safetensors", keep_masks=True)
    _store(out).save(key, fp, {"has_torch": torch_model is not None, **record})


def load_checkpoint(out: Path, key: str, fp: str, template: nn.Module) -> tuple[dict, nn.Module | None] | None:
    """(record, torch model or None) of a finished stage, or None when it must be (re)computed.

    Anything wrong with a checkpoint (unreadable, foreign, damaged, hand-edited, not fitting the model) means
    "not finished": the stage is computed again. Its files are never unpickled.
    """
    record = _store(out).load(key, fp, RECORD, optional=MEASUREMENT)
    if record is None:
        return None
    artifact = record.get("artifact")
    if artifact is not None:
        size = record.get("artifact_bytes")
        path = confined(out, artifact)  # a file of this run, even via a link
        if path is None or size is None or not path.is_file() or path.stat().st_size != size:
            return None
        try:
            check_onnx_file(path)  # what later stages, timing and packing read: under the limits of any ONNX file
        except UserError:
            return None
    model = None
    weights = out / CHECKPOINT_DIR / f"{key}.safetensors"
    if record["has_torch"]:
        try:
            with torch.no_grad():
                model = resize_to_saved(copy.deepcopy(template), weights).eval()
        except Exception:  # a damaged or swapped file of ours: recompute the stage
            return None
    mark_reused(*([weights] if model is not None else []), *([path] if artifact is not None else []))
    return record, model
