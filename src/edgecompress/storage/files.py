"""Atomic file writing: a killed run never leaves a half-written file behind.

Inside a run directory (see `rundir.owned_run_dir`), a guard places temporary files in the directory's hidden
state folder and checks every replacement against the directory's manifest, so even a kill -9 in the middle
of a write leaves only complete files, and a file edgecompress did not write is never replaced.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator, Protocol


class WriteGuard(Protocol):
    """What an owned run directory does around each write into it (see `rundir`)."""

    def temp_dir_for(self, target: Path) -> Path | None:
        """Where the temporary file for `target` goes (None: beside the target)."""

    def before_replace(self, tmp: Path, target: Path) -> None:
        """Refuse (raise) or record the replacement of `target` by the complete file `tmp`."""

    def after_replace(self, target: Path) -> None:
        """`target` now holds the new bytes."""


_GUARD: contextvars.ContextVar[WriteGuard | None] = contextvars.ContextVar("write_guard", default=None)


@contextlib.contextmanager
def guarded_by(guard: WriteGuard) -> Iterator[None]:
    """While active, every atomic write goes through `guard`."""
    token = _GUARD.set(guard)
    try:
        yield
    finally:
        _GUARD.reset(token)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path; rename it onto `target` only if the block succeeds.

    >>> with atomic_path("out/model.onnx") as tmp:  # doctest: +SKIP
    ...     write_something(tmp)
    """
    target = Path(target)
    guard = _GUARD.get()
    target.parent.mkdir(parents=True, exist_ok=True)
    folder = (guard.temp_dir_for(target) if guard is not None else None) or target.parent
    tmp = _temporary(target, folder)
    try:
        yield tmp
        os.chmod(tmp, _normal_mode())  # mkstemp makes 0600; give the file the permissions open() would
        if guard is not None:
            guard.before_replace(tmp, target)
        _replace(tmp, target)
        if guard is not None:
            guard.after_replace(target)
    finally:
        if tmp.exists():
            tmp.unlink()


def _temporary(target: Path, folder: Path) -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{target.name[:200]}.", suffix=".part", dir=folder)
    os.close(fd)
    return Path(name)


def _replace(tmp: Path, target: Path) -> None:
    try:
        os.replace(tmp, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        # the temporary folder is on another file system (a mount inside the run directory): copy beside the target
        local = _temporary(target, target.parent)
        try:
            shutil.copyfile(tmp, local)
            os.chmod(local, _normal_mode())
            os.replace(local, target)
        finally:
            local.unlink(missing_ok=True)


def atomic_write_bytes(target: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `target` atomically and return the path."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def atomic_write_text(target: str | os.PathLike, text: str) -> Path:
    """Write `text` (UTF-8) to `target` atomically and return the path."""
    return atomic_write_bytes(target, text.encode("utf-8"))


def _normal_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask
