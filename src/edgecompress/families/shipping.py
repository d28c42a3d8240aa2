"""What every family's artifact folder holds: the final ONNX file, its tokenizer and a settings file.

A text model is useless without the tokenizer it was trained with, so they ship together; the settings file
(`encoder.json`, `lm.json`) says how to feed the model. Each file is written atomically.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from edgecompress.core.errors import UserError, first_line
from edgecompress.storage.files import atomic_path, atomic_write_text
from edgecompress.untrusted.limits import MAX_TEXT_BYTES
from edgecompress.untrusted.paths import confined
from edgecompress.untrusted.quoting import quote
from edgecompress.untrusted.regular_files import read_regular_text


def write_artifact_folder(onnx_path: str | Path, tokenizer, settings: dict, settings_file: str, out_dir: str | Path) -> Path:
    """Copy `onnx_path` (as `settings["model"]`) and the tokenizer into `out_dir`, with `settings` as JSON."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        tokenizer.save_pretrained(scratch)
        for file in sorted(Path(scratch).iterdir()):
            with atomic_path(out / file.name) as tmp:
                shutil.copyfile(file, tmp)
    atomic_write_text(out / settings_file, json.dumps(settings, indent=2) + "\n")
    model = out / settings["model"]
    if Path(onnx_path).resolve() != model.resolve():
        with atomic_path(model) as tmp:
            shutil.copyfile(onnx_path, tmp)
    return out


def read_artifact_settings(path: Path, positive: tuple[str, ...], integers: tuple[str, ...] = ()) -> dict:
    """A settings file, checked: a hand-edited or truncated file is a one-line UserError, not a KeyError; the
    fields in `positive` must be integers >= 1, those in `integers` integers; the model file it names must be
    a file inside the artifact folder."""
    try:
        settings = json.loads(read_regular_text(path, "artifact: file", MAX_TEXT_BYTES))
    except (ValueError, RecursionError) as exc:
        raise UserError(f"artifact: {path} is not valid JSON ({first_line(exc)[:120]}); pass a folder written by edgecompress") from None
    if (not isinstance(settings, dict) or not isinstance(settings.get("model"), str)
            or any(type(settings.get(name)) is not int or settings[name] < 1 for name in positive)
            or any(type(settings.get(name)) is not int for name in integers)):
        wanted = f"a positive {', '.join(positive)}" + (f" or {', '.join(integers)}" if integers else "")
        raise UserError(f"artifact: {path} lacks a model file name or {wanted}; pass a folder written by edgecompress")
    if confined(path.parent, settings["model"]) is None:
        raise UserError(f"artifact: {path} names the model file {quote(settings['model'])}, outside its folder {path.parent}; "
                        "an artifact's model must be a file inside it")
    if not (path.parent / settings["model"]).is_file():
        raise UserError(f"artifact: {path.parent} has no {quote(settings['model'])}; pass a folder written by edgecompress")
    return settings
