"""The deliverable: a folder with the ONNX encoder and its tokenizer, and `embed` that runs it in ONNX Runtime.

A sentence encoder is useless without the tokenizer it was trained with, so they ship together:
`model.onnx`, the tokenizer files, and `encoder.json` (maximum length, input and output names).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from edgecompress.core.errors import UserError, first_line
from edgecompress.families.encoder.batches import INPUT_NAMES, token_batches
from edgecompress.families.encoder.export import OUTPUT_NAME
from edgecompress.runtime.sessions import make_session
from edgecompress.storage.files import atomic_path, atomic_write_text
from edgecompress.untrusted.folders import check_folder
from edgecompress.untrusted.limits import MAX_TEXT_BYTES
from edgecompress.untrusted.onnx_files import check_onnx_file
from edgecompress.untrusted.paths import confined
from edgecompress.untrusted.quoting import quote
from edgecompress.untrusted.regular_files import read_regular_text

MODEL_FILE = "model.onnx"
SETTINGS_FILE = "encoder.json"


def save_artifact(onnx_path: str | Path, tokenizer, max_length: int, out_dir: str | Path) -> Path:
    """Copy `onnx_path` and the tokenizer into `out_dir` (each file atomically); returns `out_dir`.

    >>> save_artifact("final.onnx", loaded.tokenizer, loaded.max_length, "runs/minilm/artifact")  # doctest: +SKIP
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        tokenizer.save_pretrained(scratch)
        for file in sorted(Path(scratch).iterdir()):
            with atomic_path(out / file.name) as tmp:
                shutil.copyfile(file, tmp)
    settings = {"model": MODEL_FILE, "inputs": list(INPUT_NAMES), "output": OUTPUT_NAME, "max_length": max_length, "pooling": "mean, L2-normalised"}
    atomic_write_text(out / SETTINGS_FILE, json.dumps(settings, indent=2) + "\n")
    if Path(onnx_path).resolve() != (out / MODEL_FILE).resolve():
        with atomic_path(out / MODEL_FILE) as tmp:
            shutil.copyfile(onnx_path, tmp)
    return out


def embed(artifact_dir: str | Path, sentences: list[str], batch_size: int = 32) -> np.ndarray:
    """Embeddings of `sentences` computed by the shipped ONNX model and tokenizer, one row each.

    >>> embed("runs/minilm/artifact", ["How do I sort a list?"]).shape  # doctest: +SKIP
    (1, 384)
    """
    model, max_length, tokenizer = open_artifact(artifact_dir)
    return embed_feeds(model, token_batches(tokenizer, list(sentences), batch_size, max_length))


def open_artifact(artifact_dir: str | Path):
    """(ONNX model path, max_length, tokenizer) of a shipped encoder folder, each checked before it is read."""
    from transformers import AutoTokenizer

    folder = Path(artifact_dir)
    settings_file = folder / SETTINGS_FILE
    if not settings_file.is_file():
        raise UserError(f"artifact: {folder} has no {SETTINGS_FILE}; pass a folder written by edgecompress")
    settings = _read_settings(settings_file)
    check_folder(folder, "artifact")
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True, trust_remote_code=False)
    except Exception as exc:  # transformers raises OSError, ValueError, ... for missing or broken files
        raise UserError(f"artifact: cannot load the tokenizer in {folder}: {first_line(exc)}; pass a folder written by edgecompress") from None
    check_onnx_file(folder / settings["model"], "artifact: ONNX file")  # (make_session checks it too: this names the artifact)
    return folder / settings["model"], settings["max_length"], tokenizer


def _read_settings(path: Path) -> dict:
    """encoder.json, checked: a hand-edited or truncated file is a one-line UserError, not a KeyError, and the
    model file it names must lie inside the artifact folder."""
    try:
        settings = json.loads(read_regular_text(path, "artifact: file", MAX_TEXT_BYTES))
    except (ValueError, RecursionError) as exc:
        raise UserError(f"artifact: {path} is not valid JSON ({first_line(exc)[:120]}); pass a folder written by edgecompress") from None
    if not isinstance(settings, dict) or not isinstance(settings.get("model"), str) or type(settings.get("max_length")) is not int or settings["max_length"] < 1:
        raise UserError(f"artifact: {path} lacks a model file name or a positive max_length; pass a folder written by edgecompress")
    if confined(path.parent, settings["model"]) is None:
        raise UserError(f"artifact: {path} names the model file {quote(settings['model'])}, outside its folder {path.parent}; "
                        "an artifact's model must be a file inside it")
    if not (path.parent / settings["model"]).is_file():
        raise UserError(f"artifact: {path.parent} has no {quote(settings['model'])}; pass a folder written by edgecompress")
    return settings


def embed_feeds(onnx_path: str | Path, feeds: Iterable[Mapping[str, np.ndarray]]) -> np.ndarray:
    """Run an exported encoder on tokenized batches (one thread, as it is timed) and stack the rows."""
    session = make_session(onnx_path)
    rows = [session.run([OUTPUT_NAME], dict(feed))[0] for feed in feeds]
    if not rows:
        raise UserError("embed: no sentences were given")
    return np.concatenate(rows).astype(np.float32, copy=False)
