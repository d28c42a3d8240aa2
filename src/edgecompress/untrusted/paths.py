"""Paths named inside an untrusted file (ONNX external data, encoder.json, a checkpoint record) must stay in
the folder the file came from: relative, no `..`, and still inside once symbolic links are resolved.

>>> confined("/models/m", "weights.bin")
PosixPath('/models/m/weights.bin')
>>> confined("/models/m", "../../etc/passwd") is None
True
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath, PureWindowsPath


def confined(folder: str | os.PathLike, relative: str) -> Path | None:
    """`folder / relative` if that stays inside `folder` (links resolved), else None."""
    if not isinstance(relative, str) or not relative or "\0" in relative:
        return None
    for flavour in (PurePosixPath(relative), PureWindowsPath(relative)):
        if flavour.is_absolute() or flavour.anchor or ".." in flavour.parts:
            return None
    folder = Path(folder)
    target = folder / relative
    try:
        inside = target.resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError):  # a loop of links
        return None
    return target if inside else None
