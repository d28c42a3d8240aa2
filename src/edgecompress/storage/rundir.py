"""An output directory owned by one command at a time, whose earlier contents are never lost.

`OUT/.edgecompress/` (inside the directory, so the lock covers it) holds:
- `lock`: an OS lock (flock, through `filelock`) held while a command writes into OUT. The OS releases it when
  the process ends, even on kill -9, so a killed run never blocks the next one and two never hold it at once;
- `manifest.json` (see `manifest.py`): every file edgecompress wrote into OUT, by which command, finished or not;
- `tmp/`: temporary files, renamed into place when complete; emptied by the next command that takes the lock.

Taking a directory decides, before any work, what happens to what is already in it:
- nothing there (or an empty directory): the command starts;
- the command's own earlier output: continued with `resume` (for run, sweep, sensitivity and fit; files of the
  earlier run that this one neither reuses nor writes again are removed when it finishes), replaced with
  `force`, else refused with one line naming both. `inspect` replaces its own earlier report, and a command
  that cannot resume (encoder) starts over after its own unfinished run;
- another command's output: replaced with `force`, else refused;
- files without a manifest (not written by edgecompress): refused, or with `force` written among them.
Only paths recorded in the manifest are overwritten; a recorded file is deleted only while it holds the bytes
edgecompress wrote (a file the user changed is left, and no longer recorded). Anything else needs `force`.

>>> with owned_run_dir("runs/mine", "run", resume=True) as out:  # doctest: +SKIP
...     atomic_write_text(out / "metrics.json", "{}")
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from filelock import FileLock, Timeout

from edgecompress.core.errors import UserError
from edgecompress.storage.files import guarded_by
from edgecompress.storage.manifest import STATE_DIR, DamagedManifest, Manifest, digest
from edgecompress.storage.paths import check_output_dir

RESUMABLE = frozenset({"run", "sweep", "fit", "sensitivity"})  # commands that continue an earlier run in place with --resume
REDONE_FREELY = frozenset({"inspect"})  # a report of a model, redone in seconds: it replaces its own earlier one
LOCK_NAME = "lock"
TEMP_NAME = "tmp"

_CURRENT: contextvars.ContextVar["_Owned | None"] = contextvars.ContextVar("owned_run_dir", default=None)


@contextlib.contextmanager
def owned_run_dir(path: str | os.PathLike, command: str, resume: bool = False, force: bool = False) -> Iterator[Path]:
    """Create and lock `path` for `command`, decide what happens to what is in it (see the module docstring),
    and yield its resolved path. Nested use on the directory this context already owns is a no-op."""
    if resume and force:
        raise UserError("--resume and --force: give one of them (--resume continues the run in --out, --force replaces it)")
    current = _CURRENT.get()
    if current is not None and current.out == Path(path).resolve():
        yield current.out
        return
    check_output_dir(path)
    created = _make_dirs(Path(path))
    owned = _Owned(Path(path), command, force)
    try:
        with owned.locked():
            owned.open(resume)
            token = _CURRENT.set(owned)
            try:
                with guarded_by(owned):
                    yield owned.out
            except BaseException:
                owned.abandon(created)
                raise
            else:
                owned.finish()
            finally:
                _CURRENT.reset(token)
    except BaseException:
        _remove_empty(created)
        raise


def mark_reused(*paths: str | os.PathLike) -> None:
    """Files (or every file under folders) of an earlier attempt that this resumed run keeps as its own."""
    owned = _CURRENT.get()
    if owned is not None:
        for path in paths:
            owned.reuse(Path(path))


@contextlib.contextmanager
def scratch_dir() -> Iterator[Path]:
    """A private folder for intermediate files: in the owned directory's state folder (same disk; emptied by the
    next command after a kill), else in the system's temporary folder."""
    owned = _CURRENT.get()
    with tempfile.TemporaryDirectory(prefix="scratch-", dir=owned.state / TEMP_NAME if owned is not None else None) as folder:
        yield Path(folder)


def discard(*paths: str | os.PathLike) -> None:
    """Delete the files (or every file under folders) that edgecompress wrote at `paths` in the owned directory;
    files it did not write stay."""
    owned = _CURRENT.get()
    if owned is not None:
        for path in paths:
            owned.discard(Path(path))


class _Owned:
    """The write guard of one owned directory (see `files.WriteGuard`)."""

    def __init__(self, path: Path, command: str, force: bool):
        self.out, self.shown, self.command, self.force = path.resolve(), path, command, force
        self.state = self.out / STATE_DIR
        self.manifest = Manifest(self.out, command)
        self.continued = False
        self.current: set[str] = set()  # recorded paths this attempt wrote or reused
        self.state_existed = False

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        self.state_existed = self.state.is_dir()
        lock = FileLock(str(self.state / LOCK_NAME), timeout=0)
        for attempt in range(3):  # a failed command may remove an empty state folder between mkdir and the lock
            try:
                self.state.mkdir(parents=True, exist_ok=True)
                lock.acquire()
                break
            except Timeout:
                raise UserError(
                    f"--out: {self.shown} is in use by another edgecompress command; wait for it to finish or choose another directory"
                ) from None
            except FileNotFoundError:
                if attempt == 2:
                    raise
            except OSError as exc:
                raise UserError(f"--out: cannot write into {self.shown}: {exc.strerror}") from None
        try:
            yield
        finally:
            lock.release()

    def open(self, resume: bool) -> None:
        """Decide what happens to the directory's contents; refuse (UserError) before anything is changed."""
        try:
            previous = Manifest.read(self.out)
        except DamagedManifest as exc:
            if not self.force:
                self._leave_no_trace()
                raise UserError(f"--out: {exc}; pass --force to write into {self.shown} anyway") from None
            previous = None
        if previous is None or not any((self.out / rel).exists() for rel in previous.files):  # nothing of ours left
            previous = None
            if not self.force and any(entry.name != STATE_DIR for entry in self.out.iterdir()):
                self._leave_no_trace()
                raise UserError(
                    f"--out: {self.shown} is not empty and holds no edgecompress output; choose a new or empty directory, "
                    "or pass --force to write into it (only files with the names edgecompress writes are replaced)"
                )
        elif self.force:
            self._remove_all(previous, force=True)
        elif previous.command == self.command and resume and self.command in RESUMABLE:
            self.manifest, self.continued = previous, True
            self.manifest.finished = False
        elif previous.command == self.command and (self.command in REDONE_FREELY or (not previous.finished and self.command not in RESUMABLE)):
            self._remove_all(previous, force=False)
        else:
            raise UserError(_refusal(self.shown, previous, self.command))
        shutil.rmtree(self.state / TEMP_NAME, ignore_errors=True)  # temporaries of a killed run
        (self.state / TEMP_NAME).mkdir()
        self.manifest.save()

    def _remove_all(self, previous: Manifest, force: bool) -> None:
        for rel in list(previous.files):
            previous.remove(rel, force=force)
        previous.save()

    def _leave_no_trace(self) -> None:
        if not self.state_existed:
            shutil.rmtree(self.state, ignore_errors=True)

    def finish(self) -> None:
        if self.continued:  # files of the earlier attempt that this one did not produce again are stale
            for rel in [r for r in self.manifest.files if r not in self.current]:
                self.manifest.remove(rel, force=False)
        self.manifest.finished = True
        self.manifest.save()
        shutil.rmtree(self.state / TEMP_NAME, ignore_errors=True)

    def abandon(self, created: list[Path]) -> None:
        """A failed or interrupted attempt: keep what it wrote for --resume, or leave no trace if it wrote nothing."""
        if self.manifest.files:
            self.manifest.save()
            shutil.rmtree(self.state / TEMP_NAME, ignore_errors=True)
        else:
            shutil.rmtree(self.state, ignore_errors=True)
            _remove_empty(created)

    def reuse(self, path: Path) -> None:
        for file in _files(path):
            rel = self.manifest.relative(file)
            if rel is not None:
                self.manifest.files.setdefault(rel, [digest(file)])
                self.current.add(rel)

    def discard(self, path: Path) -> None:
        for file in _files(path):
            rel = self.manifest.relative(file)
            if rel in self.manifest.files:
                self.manifest.remove(rel, force=self.force)
                self.current.discard(rel)
        self.manifest.save()

    # files.WriteGuard
    def temp_dir_for(self, target: Path) -> Path | None:
        return self.state / TEMP_NAME if self.manifest.relative(target) is not None else None

    def before_replace(self, tmp: Path, target: Path) -> None:
        rel = self.manifest.relative(target)
        if rel is None:
            return
        old = None
        if target.is_symlink() or target.exists():
            if target.is_dir() and not target.is_symlink():
                raise UserError(f"--out: {target} is a directory where edgecompress writes a file; move it away")
            if not self.force and rel not in self.manifest.files:
                raise UserError(f"--out: {target} was not written by edgecompress; move it away or pass --force to replace it")
            old = digest(target) if target.is_file() and not target.is_symlink() else None
        self.manifest.record(rel, digest(tmp), old)
        self.current.add(rel)

    def after_replace(self, target: Path) -> None:
        rel = self.manifest.relative(target)
        if rel is not None:
            self.manifest.settle(rel)


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file())
    return [path] if path.is_file() else []


def _refusal(out: Path, previous: Manifest, command: str) -> str:
    state = "finished" if previous.finished else "unfinished (interrupted or failed)"
    article = "a" if previous.finished else "an"
    what = f"{article} {state} run" if previous.command == "run" else f"the {state} output of `edgecompress {previous.command}`"
    if previous.command == command and command in RESUMABLE:
        verb = "reuse" if previous.finished else "continue"
        return f"--out: {out} holds {what}; pass --resume to {verb} it or --force to replace it"
    return f"--out: {out} holds {what}; pass --force to replace it, or choose another directory"


def _make_dirs(out: Path) -> list[Path]:
    """Create `out` and its missing parents; return the folders created, outermost first."""
    missing = [p for p in (out, *out.parents) if not p.exists()][::-1]
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _remove_empty(missing)
        raise UserError(f"--out: cannot create directory {out}: {exc.strerror}") from None
    if not os.access(out, os.W_OK):
        raise UserError(f"--out: directory {out} is not writable; choose another directory")
    return missing


def _remove_empty(folders: list[Path]) -> None:
    for folder in reversed(folders):
        try:
            folder.rmdir()
        except OSError:
            return
