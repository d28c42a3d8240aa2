"""An output directory owned by one run: locked against a second run, with temporary files kept outside it."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Iterator

from edgecompress.errors import UserError
from edgecompress.files import prepare_output_dir, staging_for

LOCK_NAME = ".edgecompress.lock"
_held: set[Path] = set()  # run directories this process holds (nested use is a no-op)


@contextlib.contextmanager
def owned_run_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Create/lock `path` for this run; refuse if another live process holds it.

    The lock is a file created with O_EXCL holding the owner's PID; a lock whose process is gone (a killed
    run) is taken over. Temporary files go to a hidden sibling directory, removed at the end.
    """
    out = prepare_output_dir(path).resolve()
    if out in _held:
        yield out
        return
    lock = out / LOCK_NAME
    _acquire(lock)
    _held.add(out)
    staging = out.parent / f".{out.name}.edgecompress-staging"
    shutil.rmtree(staging, ignore_errors=True)  # leftovers of a killed run
    try:
        staging.mkdir(exist_ok=True)
    except OSError:
        staging = out  # parent not writable: fall back to temporaries beside their targets
    try:
        with staging_for(out, staging):
            yield out
    finally:
        _held.discard(out)
        if staging != out:
            shutil.rmtree(staging, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()


def _acquire(lock: Path) -> None:
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            owner = _owner(lock)
            if owner is not None and _alive(owner):
                raise UserError(
                    f"--out: {lock.parent} is in use by another edgecompress run (pid {owner}); "
                    "wait for it or choose another directory"
                ) from None
            lock.unlink(missing_ok=True)  # stale: its run was killed
            continue
        with os.fdopen(fd, "w") as handle:
            handle.write(str(os.getpid()))
        return
    raise UserError(f"--out: cannot lock {lock.parent}; remove {lock} if no run is using it")


def _owner(lock: Path) -> int | None:
    try:
        return int(lock.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
