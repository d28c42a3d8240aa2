"""Which architecture a weights file may choose by itself: a built-in one, never code.

edgecompress writes the spec that built a model into its `.safetensors` metadata (`edgecompress.arch`), so
`load_model("model.safetensors")` can rebuild it alone. A built-in name is data. A `module:function` or
`file.py:function` is code: building it imports and runs that Python file. A file from somewhere else must
not be able to choose that (a model folder shipped with an `evil.py` beside its weights would otherwise run
it), so such a spec is used only when the user consents: by naming it (`--arch` / `arch=`, or a recipe's
`model:` with `weights:`), which bypasses the metadata, or with `--trust-code` / `trust_code=True`.
"""

from __future__ import annotations

from pathlib import Path

from edgecompress.core.errors import UserError
from edgecompress.core.models.registry import BUILTIN_MODELS
from edgecompress.untrusted.quoting import quote

ARCH_KEY = "edgecompress.arch"


def arch_from_metadata(named: str, path: Path, trust_code: bool) -> str:
    """The spec to build for a file whose metadata names `named`; refuses code unless `trust_code`."""
    if named in BUILTIN_MODELS:
        return named
    if ":" not in named:
        raise UserError(f"model: {path} names an unknown architecture {quote(named)} in its metadata ({ARCH_KEY}); "
                        f"give the architecture with --arch (a built-in: {', '.join(BUILTIN_MODELS)}, or module:function)")
    if trust_code:
        return named
    raise UserError(
        f"model: {path} names the architecture {quote(named)} in its metadata ({ARCH_KEY}); building it would import "
        "and run that Python code, and a file alone may not choose code. If you trust it, name it yourself with "
        "--arch SPEC (Python: arch=SPEC; in a recipe: model: SPEC with weights: FILE) or pass --trust-code"
    )
