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

from edgecompress.encoders.batches import INPUT_NAMES, token_batches
from edgecompress.encoders.export import OUTPUT_NAME
from edgecompress.errors import UserError, first_line
from edgecompress.files import atomic_path, atomic_write_text
from edgecompress.measure.onnx_runtime import make_session

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
    from transformers import AutoTokenizer

    folder = Path(artifact_dir)
    settings_file = folder / SETTINGS_FILE
    if not settings_file.is_file():
        raise UserError(f"artifact: {folder} has no {SETTINGS_FILE}; pass a folder written by edgecompress")
    settings = _read_settings(settings_file)
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except Exception as exc:  # transformers raises OSError, ValueError, ... for missing or broken files
        raise UserError(f"artifact: cannot load the tokenizer in {folder}: {first_line(exc)}; pass a folder written by edgecompress") from None
    feeds = token_batches(tokenizer, list(sentences), batch_size, settings["max_length"])
    return embed_feeds(folder / settings["model"], feeds)


def _read_settings(path: Path) -> dict:
    """encoder.json, checked: a hand-edited or truncated file is a one-line UserError, not a KeyError."""
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"artifact: {path} is not valid JSON ({first_line(exc)}); pass a folder written by edgecompress") from None
    if not isinstance(settings, dict) or not isinstance(settings.get("model"), str) or type(settings.get("max_length")) is not int or settings["max_length"] < 1:
        raise UserError(f"artifact: {path} lacks a model file name or a positive max_length; pass a folder written by edgecompress")
    name = settings["model"]
    if not _inside(path.parent, name):
        raise UserError(f"artifact: {path} names a model file outside its folder ({name[:60]!r}); it must name a file directly in {path.parent}")
    if not (path.parent / name).is_file():
        raise UserError(f"artifact: {path.parent} has no {name}; pass a folder written by edgecompress")
    return settings


def _inside(folder: Path, name: str) -> bool:
    """`name` is a plain file name in `folder` (no path, no link leading out): the model an artifact ships."""
    if not name or "\0" in name or len(name.encode()) > 255 or Path(name).name != name or name in (".", ".."):
        return False
    return (folder / name).resolve().is_relative_to(folder.resolve())


def embed_feeds(onnx_path: str | Path, feeds: Iterable[Mapping[str, np.ndarray]]) -> np.ndarray:
    """Run an exported encoder on tokenized batches (one thread, as it is timed) and stack the rows."""
    session = make_session(onnx_path)
    rows = [session.run([OUTPUT_NAME], dict(feed))[0] for feed in feeds]
    if not rows:
        raise UserError("embed: no sentences were given")
    return np.concatenate(rows).astype(np.float32, copy=False)
