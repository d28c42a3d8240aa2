"""An offline code corpus: the Python standard library's source files, split by file.

No pretrained decoder and no text dataset ship offline, but every machine with Python has its standard
library: about 560 files and 10 MB of real, varied Python (tests, IDLE and other bundled applications left
out). Files, not lines, are the unit of the split, so no held-out file shares a line's context with training;
a file's set is fixed by a hash of its path, so the split is the same on every machine with the same Python
version, whatever order the filesystem lists files in.
"""

from __future__ import annotations

import hashlib
import sysconfig
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

_SKIP_DIRS = {"test", "tests", "idlelib", "lib2to3", "site-packages", "turtledemo", "__pycache__", "tkinter", "ensurepip"}
HELD_OUT_SHARE = 0.10  # scored only: perplexity and agreement are measured here
VALIDATION_SHARE = 0.05  # for choices (e.g. which layers keep float) and calibration checks
MIN_CHARACTERS = 200


@dataclass(frozen=True)
class SourceCorpus:
    """Disjoint file texts: `train` (training, calibration), `validation` (choices), `held_out` (scoring only)."""

    train: tuple[str, ...]
    validation: tuple[str, ...]
    held_out: tuple[str, ...]


@lru_cache(maxsize=1)
def stdlib_corpus() -> SourceCorpus:
    """The standard library's source files in three fixed sets.

    >>> corpus = stdlib_corpus()
    >>> len(corpus.train) > len(corpus.held_out) > 0
    True
    """
    sets: dict[str, list[str]] = {"train": [], "validation": [], "held_out": []}
    root = Path(sysconfig.get_paths()["stdlib"])
    seen: set[str] = set()
    for path in _source_files(root):
        text = path.read_text(encoding="utf-8", errors="replace")
        if len(text.strip()) < MIN_CHARACTERS or text in seen:  # empty __init__.py files; copies of a file
            continue
        seen.add(text)
        sets[_set_of(path.relative_to(root).as_posix())].append(text)
    return SourceCorpus(**{name: tuple(texts) for name, texts in sets.items()})


def _source_files(root: Path) -> list[Path]:
    files = [p for p in root.rglob("*.py") if not _SKIP_DIRS & set(p.relative_to(root).parts[:-1])]
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def _set_of(relative_path: str) -> str:
    """A file's set from a hash of its path: stable across machines and listing orders."""
    fraction = int.from_bytes(hashlib.sha256(relative_path.encode()).digest()[:8], "big") / 2**64
    if fraction < HELD_OUT_SHARE:
        return "held_out"
    if fraction < HELD_OUT_SHARE + VALIDATION_SHARE:
        return "validation"
    return "train"
