"""Checks of the paths a user gives, made before any work: one line that says what is wrong with the path
(missing, a directory, a device, too long, the input itself) instead of an OSError after minutes of work.

>>> check_input_file(Path("runs"), "recipe")  # doctest: +SKIP
UserError: recipe: runs is a directory, not a file; pass the file itself
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Iterable

from edgecompress.core.errors import UserError

NAME_MAX = 255  # bytes in one path component (ext4, xfs, btrfs, tmpfs)
PATH_MAX = 4095  # bytes in a whole path


def check_path_length(path: str | os.PathLike, field: str) -> None:
    """Refuse a path the operating system would reject: too long (ENAMETOOLONG), or holding a NUL byte."""
    raw = os.fsencode(path)
    if b"\0" in raw:
        raise UserError(f"{field}: the path holds a NUL byte, which no file name can; check the {field} value")
    if len(raw) > PATH_MAX:
        raise UserError(f"{field}: the path is {len(raw):,} bytes long; the limit is {PATH_MAX:,}")
    longest = max(raw.split(b"/"), key=len)
    if len(longest) > NAME_MAX:
        shown = os.fsdecode(longest[:40])
        raise UserError(f"{field}: the name {shown!r}... is {len(longest)} bytes long; file names may have at most {NAME_MAX}")


def check_input_file(path: str | os.PathLike, field: str) -> Path:
    """`path` must be an existing regular file (not a directory, device, pipe or socket)."""
    return _existing(Path(path), field, "file")


def check_input_dir(path: str | os.PathLike, field: str) -> Path:
    """`path` must be an existing directory."""
    return _existing(Path(path), field, "directory")


def _existing(path: Path, field: str, wanted: str) -> Path:
    check_path_length(path, field)
    kind = _kind(path, field)
    if kind == wanted:
        return path
    if kind is None:
        raise UserError(f"{field}: {wanted} {path} does not exist")
    if wanted == "directory":
        raise UserError(f"{field}: {path} is a {kind}, not a directory")
    if kind == "directory":
        raise UserError(f"{field}: {path} is a directory, not a file; pass the file itself")
    raise UserError(f"{field}: {path} is not a regular file (it is a {kind}); pass a file")


def check_output_dir(path: str | os.PathLike, field: str = "--out") -> Path:
    """Fail early, creating nothing, if `path` cannot become an output directory."""
    out = Path(path)
    check_path_length(out, field)
    kind = _kind(out, field)
    if kind is not None and kind != "directory":
        raise UserError(f"{field}: {out} is a {kind}, not a directory; pass a directory path")
    _check_parents(out, field)
    return out


def check_output_file(path: str | os.PathLike, field: str = "--out", inputs: Iterable[Path] = (), force: bool = False) -> Path:
    """Fail early if `path` cannot take an output file: a directory, under a file, one of the `inputs`, or an
    existing file (replaced only with `force`)."""
    target = Path(path)
    check_path_length(target, field)
    kind = _kind(target, field)
    if kind == "directory":
        raise UserError(f"{field}: {target} is a directory; pass the path of the file to write")
    _check_parents(target, field)
    for source in inputs:
        if kind is not None and _same_file(source, target):
            raise UserError(f"{field}: {target} is the input file itself; choose another output path")
    if kind is not None and kind != "file":
        raise UserError(f"{field}: {target} is a {kind}, not a regular file; choose another output path")
    if kind is not None and not force:
        raise UserError(f"{field}: {target} already exists; pass --force to replace it")
    return target


def _check_parents(path: Path, field: str) -> None:
    for parent in path.parents:
        kind = _kind(parent, field)
        if kind is None:
            continue
        if kind != "directory":
            raise UserError(f"{field}: {parent} is a {kind}, so {path} cannot be created; pass a path under a directory")
        return


def _kind(path: Path, field: str) -> str | None:
    """'file', 'directory', 'device', 'pipe', 'socket', or None if nothing is there."""
    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise UserError(f"{field}: cannot use {path}: {exc.strerror}") from None
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISFIFO(mode):
        return "pipe"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "device"


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
