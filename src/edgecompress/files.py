"""Atomic file writing: a killed run never leaves a half-written file behind."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

from edgecompress.errors import UserError


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it onto `target` only if the block succeeds.

    >>> with atomic_path("out/model.onnx") as tmp:  # doctest: +SKIP
    ...     write_something(tmp)
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the permissions open() would
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_bytes(target: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `target` atomically and return the path."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def atomic_write_text(target: str | os.PathLike, text: str) -> Path:
    """Write `text` (UTF-8) to `target` atomically and return the path."""
    return atomic_write_bytes(target, text.encode("utf-8"))


def check_output_dir(path: str | os.PathLike) -> Path:
    """Fail early, creating nothing, if `path` cannot become an output directory."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out: {out} is a file, not a directory; pass a directory path")
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UserError(f"--out: {parent} is a file, so {out} cannot be created; pass a directory path")
            break
    return out


def prepare_output_dir(path: str | os.PathLike) -> Path:
    """Check that `path` can hold a run's outputs, creating it if needed (fails before any work is done)."""
    out = check_output_dir(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--out: cannot create directory {out}: {exc.strerror}") from None
    if not os.access(out, os.W_OK):
        raise UserError(f"--out: directory {out} is not writable; choose another directory")
    return out


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
