"""The deliverable: a folder with the ONNX encoder and its tokenizer, and `embed` that runs it in ONNX Runtime.

A sentence encoder is useless without the tokenizer it was trained with, so they ship together:
`model.onnx`, the tokenizer files, and `encoder.json` (maximum length, input and output names).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from edgecompress.core.errors import UserError, first_line
from edgecompress.families.encoder.batches import INPUT_NAMES, token_batches
from edgecompress.families.encoder.export import OUTPUT_NAME
from edgecompress.families.shipping import read_artifact_settings, write_artifact_folder
from edgecompress.runtime.sessions import make_session
from edgecompress.untrusted.folders import check_folder
from edgecompress.untrusted.onnx_files import check_onnx_file

MODEL_FILE = "model.onnx"
SETTINGS_FILE = "encoder.json"


def save_artifact(onnx_path: str | Path, tokenizer, max_length: int, out_dir: str | Path) -> Path:
    """Copy `onnx_path` and the tokenizer into `out_dir` (each file atomically); returns `out_dir`.

    >>> save_artifact("final.onnx", loaded.tokenizer, loaded.max_length, "runs/minilm/artifact")  # doctest: +SKIP
    """
    settings = {"model": MODEL_FILE, "inputs": list(INPUT_NAMES), "output": OUTPUT_NAME, "max_length": max_length, "pooling": "mean, L2-normalised"}
    return write_artifact_folder(onnx_path, tokenizer, settings, SETTINGS_FILE, out_dir)


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
    return read_artifact_settings(path, ("max_length",))


def embed_feeds(onnx_path: str | Path, feeds: Iterable[Mapping[str, np.ndarray]]) -> np.ndarray:
    """Run an exported encoder on tokenized batches (one thread, as it is timed) and stack the rows."""
    session = make_session(onnx_path)
    rows = [session.run([OUTPUT_NAME], dict(feed))[0] for feed in feeds]
    if not rows:
        raise UserError("embed: no sentences were given")
    return np.concatenate(rows).astype(np.float32, copy=False)
