"""Check a folder from elsewhere (a Hugging Face encoder, a shipped artifact) before a library reads it:
a bounded number of files, each a regular file under its size limit, and no link that leads out of it.

`transformers` opens the files a folder's JSON names and reads tokenizers whole; a link to `/dev/zero` or to
a file outside the folder, or a tokenizer.json of gigabytes, is refused here first.

>>> check_folder(Path("runs/encoder/artifact"), "artifact")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path

from edgecompress.core.errors import UserError
from edgecompress.untrusted.limits import MAX_FOLDER_FILES, MAX_MODEL_BYTES, MAX_TEXT_BYTES
from edgecompress.untrusted.paths import confined
from edgecompress.untrusted.regular_files import check_regular

TEXT_SUFFIXES = {".json", ".txt", ".model", ".vocab", ".merges", ".yaml", ".md"}  # read whole, as text


def check_folder(folder: Path, field: str) -> None:
    """Refuse `folder` (one line starting with `field`) if any entry breaks a limit or links out."""
    count = 0
    for directory, subfolders, files in os.walk(folder, followlinks=False):
        for name in sorted(subfolders) + sorted(files):
            count += 1
            MAX_FOLDER_FILES.check(count, f"{field}: the folder {folder}")
            entry = Path(directory, name)
            if entry.is_symlink() and confined(folder, str(entry.relative_to(folder))) is None:
                raise UserError(f"{field}: {entry} is a link to {os.readlink(entry)[:100]!r}, outside the folder {folder}; "
                                "a model folder may only link to files inside it")
        for name in files:
            entry = Path(directory, name)
            limit = MAX_TEXT_BYTES if entry.suffix.lower() in TEXT_SUFFIXES else MAX_MODEL_BYTES
            check_regular(entry, f"{field}: file", limit)
