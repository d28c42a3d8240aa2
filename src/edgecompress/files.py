"""Atomic file writing: a killed run never leaves a half-written file behind.

Inside a run directory (see `staging_for`), temporary files live in a hidden sibling directory, so even a
kill -9 in the middle of a write leaves only complete files in the run directory itself.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from edgecompress.errors import UserError

# (run directory, its staging directory) while a run owns one
_STAGING: contextvars.ContextVar[tuple[Path, Path] | None] = contextvars.ContextVar("staging", default=None)


@contextlib.contextmanager
def staging_for(run_dir: Path, staging_dir: Path) -> Iterator[None]:
    """While active, temporary files for targets inside `run_dir` are created in `staging_dir`."""
    token = _STAGING.set((run_dir.resolve(), staging_dir))
    try:
        yield
    finally:
        _STAGING.reset(token)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path; rename it onto `target` only if the block succeeds.

    >>> with atomic_path("out/model.onnx") as tmp:  # doctest: +SKIP
    ...     write_something(tmp)
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=_temp_dir_for(target))
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the permissions open() would
        _replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def _temp_dir_for(target: Path) -> Path:
    staging = _STAGING.get()
    if staging is not None:
        run_dir, staging_dir = staging
        if target.resolve().is_relative_to(run_dir) and staging_dir.is_dir():
            return staging_dir
    return target.parent


def _replace(tmp: Path, target: Path) -> None:
    try:
        os.replace(tmp, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        # staging on another file system (the run directory is a mount point): stage beside the target
        with atomic_path_beside(target) as local:
            shutil.copyfile(tmp, local)


@contextlib.contextmanager
def atomic_path_beside(target: Path) -> Iterator[Path]:
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    local = Path(name)
    try:
        yield local
        os.replace(local, target)
    finally:
        if local.exists():
            local.unlink()


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
