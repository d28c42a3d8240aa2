"""Open a user's file only if it is a regular file under a size limit: never a device, FIFO or socket.

`/dev/zero` would be read forever and a FIFO would block `open` until a writer comes, so the type is checked
with `stat` first and again on the open descriptor (opened non-blocking), which closes the gap in between.

>>> read_regular("model.onnx", "ONNX file", MAX_MODEL_BYTES)  # doctest: +SKIP
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from edgecompress.core.errors import UserError
from edgecompress.untrusted.limits import Limit


def check_regular(path: str | os.PathLike, what: str, limit: Limit) -> int:
    """The size of `path`, refusing a missing path, a directory, a non-regular file or one over `limit`."""
    path = Path(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise UserError(f"{what} {path} not found") from None
    except OSError as exc:
        raise UserError(f"{what} {path} cannot be read: {exc.strerror}") from None
    _check_stat(info, path, what, limit)
    return info.st_size


def open_regular(path: str | os.PathLike, what: str, limit: Limit) -> BinaryIO:
    """`path` opened for reading after the same checks as `check_regular`, repeated on the descriptor itself
    (opened non-blocking, so a FIFO swapped in meanwhile cannot block us)."""
    path = Path(path)
    check_regular(path, what, limit)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise UserError(f"{what} {path} cannot be read: {exc.strerror}") from None
    handle = os.fdopen(fd, "rb")
    try:
        _check_stat(os.fstat(fd), path, what, limit)
    except UserError:
        handle.close()
        raise
    return handle


def read_regular(path: str | os.PathLike, what: str, limit: Limit) -> bytes:
    """The bytes of `path`, a regular file under `limit`, never reading more than the limit allows."""
    with open_regular(path, what, limit) as handle:
        data = handle.read(limit.value() + 1)
    limit.check(len(data), f"{what} {path}")  # a file that grew while being read
    return data


def read_regular_text(path: str | os.PathLike, what: str, limit: Limit) -> str:
    """`read_regular` decoded as UTF-8; a file that is not UTF-8 is a one-line UserError."""
    try:
        return read_regular(path, what, limit).decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{what} {path} is not UTF-8 text") from None


def _check_stat(info: os.stat_result, path: Path, what: str, limit: Limit) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise UserError(f"{what} {path} is a directory, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise UserError(f"{what} {path} is not a regular file (a device, FIFO or socket); pass a file")
    limit.check(info.st_size, f"{what} {path}")
