"""The record of what edgecompress wrote into an output directory: how its files are told from the user's.

`OUT/.edgecompress/manifest.json` names the command that owns the directory, whether it finished, and every
file it wrote there with the SHA-256 of the bytes it wrote. A path is recorded before its file is renamed into
place (with the old and the new digest while the rename is in flight), so a kill at any moment never leaves one
of edgecompress's files unrecorded. A file that is not recorded, or whose bytes changed since, is the user's.

>>> manifest = Manifest.read(Path("runs/demo"))  # doctest: +SKIP
>>> manifest.command, manifest.finished, manifest.owns("final.onnx")  # doctest: +SKIP
('run', True, True)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

STATE_DIR = ".edgecompress"  # inside the output directory: the lock, this manifest and temporary files
MANIFEST_NAME = "manifest.json"
FORMAT = 1


class DamagedManifest(ValueError):
    """The manifest exists but cannot be read as one: nothing in the directory can be called ours."""


def digest(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


@dataclass
class Manifest:
    out: Path
    command: str
    finished: bool = False
    files: dict[str, list[str]] = field(default_factory=dict)  # relative POSIX path -> digests its bytes may have

    @property
    def path(self) -> Path:
        return self.out / STATE_DIR / MANIFEST_NAME

    @classmethod
    def read(cls, out: Path) -> Manifest | None:
        """The directory's manifest; None if it has none. Raises DamagedManifest if it cannot be trusted."""
        path = out / STATE_DIR / MANIFEST_NAME
        try:
            data = json.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise DamagedManifest(f"{path} cannot be read ({type(exc).__name__})") from None
        try:
            files = {str(rel): [str(d) for d in digests] for rel, digests in data["files"].items()}
            manifest = cls(out, str(data["command"]), bool(data["finished"]), files)
        except (KeyError, TypeError, AttributeError):
            raise DamagedManifest(f"{path} is not an edgecompress manifest") from None
        outside = [rel for rel in files if not manifest.is_inside(rel)]
        if outside:  # a hand-edited record must never make edgecompress replace or delete files elsewhere
            raise DamagedManifest(f"{path} names {outside[0]!r}, which is not a file inside {out}")
        return manifest

    def save(self) -> None:
        from edgecompress.storage.files import atomic_write_text

        document = {"format": FORMAT, "command": self.command, "finished": self.finished, "files": self.files}
        atomic_write_text(self.path, json.dumps(document, indent=1, sort_keys=True) + "\n")

    def relative(self, path: Path) -> str | None:
        """`path` relative to the directory (POSIX), or None if it lies outside it or in the state folder."""
        path = Path(path)
        try:  # the folder resolved (symlinks, relative paths), the name as given: a symlink there is not followed
            rel = PurePosixPath((path.parent.resolve() / path.name).relative_to(self.out).as_posix())
        except ValueError:
            return None
        return None if not rel.parts or rel.parts[0] == STATE_DIR else str(rel)

    def is_inside(self, rel: str) -> bool:
        pure = PurePosixPath(rel)
        if pure.is_absolute() or ".." in pure.parts or not pure.parts or pure.parts[0] == STATE_DIR:
            return False
        return (self.out / pure).resolve().is_relative_to(self.out.resolve())

    def owns(self, rel: str) -> bool:
        """True if `rel` is recorded and still holds bytes edgecompress wrote (a missing file is nobody's)."""
        file = self.out / rel
        if rel not in self.files or file.is_symlink() or not file.is_file():
            return False
        return digest(file) in self.files[rel]

    def record(self, rel: str, new: str, old: str | None) -> None:
        """Record `rel` before its new bytes are renamed into place: either content is ours until `settle`."""
        self.files[rel] = [d for d in (old, new) if d is not None]
        self.save()

    def settle(self, rel: str) -> None:
        """The rename is done: only the new bytes are ours now (saved with the next change)."""
        self.files[rel] = self.files[rel][-1:]

    def forget(self, rel: str) -> None:
        self.files.pop(rel, None)

    def remove(self, rel: str, force: bool) -> None:
        """Delete a recorded file if it still holds our bytes (or with `force`), and forget it either way."""
        file = self.out / rel
        if (force and not file.is_dir()) or self.owns(rel):
            file.unlink(missing_ok=True)
            _remove_empty_parents(file.parent, self.out)
        self.forget(rel)


def _remove_empty_parents(folder: Path, root: Path) -> None:
    """Remove the folders a deleted file leaves empty, up to (not including) `root`."""
    while folder != root and folder.is_relative_to(root):
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent
