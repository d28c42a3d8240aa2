"""One resumable store for pipeline stages, sweep points, sensitivity trials, fit candidates and trained baselines.

A key's record is one JSON object at a fixed place under the run's directory. Its files are written first and
the record last, with a fingerprint (a hash of everything that produced the result) and the size of each file,
so a record that exists vouches for whole files. On resume a record counts as done only if it is a JSON object
under the size limit of any untrusted text file, its fingerprint is this run's, every field the caller needs has
the JSON type the caller expects, and every file it names lies inside the run at the recorded size. Anything
else (missing, damaged, hand-edited, from other settings) means "not done": the trial runs again, it never
crashes the run. Files are never unpickled here; callers read them with the bounded loaders.

>>> store = TrialStore(Path("runs/sweep"), "points/{key}.json")  # doctest: +SKIP
>>> store.save("unstructured-0.5-ft", fp, {"score": 97.2}, files={"points/unstructured-0.5-ft.onnx": data})  # doctest: +SKIP
>>> store.load("unstructured-0.5-ft", fp, {"score": float})  # doctest: +SKIP
{'score': 97.2}
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Mapping, Sequence

from torch import nn

from edgecompress.core.errors import UserError
from edgecompress.storage.files import atomic_write_bytes, atomic_write_text
from edgecompress.storage.rundir import mark_reused
from edgecompress.untrusted.limits import MAX_TEXT_BYTES
from edgecompress.untrusted.paths import confined
from edgecompress.untrusted.regular_files import read_regular_text

FINGERPRINT = "fingerprint"
FILE_BYTES = "file_bytes"  # relative path -> size of every file the record vouches for
BOOKKEEPING = (FINGERPRINT, FILE_BYTES)

# JSON types a field may be declared with; int is also a float, a bool is neither
Schema = Mapping[str, "type | tuple[type, ...]"]


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


class TrialStore:
    """Records under `root` (the run's output directory), one per key at `record` (a template with `{key}`)."""

    def __init__(self, root: Path, record: str = "{key}.json"):
        self.root = Path(root)
        self.record = record

    def record_path(self, key: str) -> Path:
        return self.root / self.record.format(key=key)

    def save(self, key: str, fp: str, fields: Mapping, files: Mapping[str, bytes] | None = None,
             indent: int | None = None) -> None:
        """Write `files` (relative path -> bytes, each atomically), then, last, the record: `fields`, the
        fingerprint `fp` and each file's size."""
        files = files or {}
        for relative, data in files.items():
            atomic_write_bytes(self.root / relative, data)
        record = {FINGERPRINT: fp, **fields, FILE_BYTES: {relative: len(data) for relative, data in files.items()}}
        atomic_write_text(self.record_path(key), json.dumps(record, indent=indent) + ("\n" if indent else ""))

    def load(self, key: str, fp: str, schema: Schema, optional: Schema | None = None, needs: Sequence[str] = ()) -> dict | None:
        """The record's fields (all of them, bookkeeping removed), or None when the trial must run again.

        Every field of `schema` must be there with its JSON type; a field of `optional` may be missing. Every
        file the record names must be whole, and `needs` (relative paths) must be among them."""
        path = self.record_path(key)
        try:
            record = json.loads(read_regular_text(path, "trial record", MAX_TEXT_BYTES))
        except (OSError, ValueError, UserError, RecursionError):
            return None
        if not isinstance(record, dict) or record.get(FINGERPRINT) != fp or not _typed(record, schema, optional or {}):
            return None
        files = self._whole_files(record.get(FILE_BYTES))
        if files is None or not set(needs) <= set(record[FILE_BYTES]):
            return None
        mark_reused(path, *files)
        return {k: v for k, v in record.items() if k not in BOOKKEEPING}

    def _whole_files(self, sizes) -> list[Path] | None:
        """The files a record names, if each lies inside the run (links included) and has its recorded size."""
        if not isinstance(sizes, dict):
            return None
        paths = []
        for relative, size in sizes.items():
            path = confined(self.root, relative)
            if path is None or not _is(size, int) or not path.is_file() or path.stat().st_size != size:
                return None
            paths.append(path)
        return paths


def _is(value, kind) -> bool:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool):
        return bool in kinds
    return isinstance(value, kinds) or (float in kinds and isinstance(value, int))


def _typed(record: dict, schema: Schema, optional: Schema) -> bool:
    return (all(name in record and _is(record[name], kind) for name, kind in schema.items())
            and all(_is(record[name], kind) for name, kind in optional.items() if name in record))
