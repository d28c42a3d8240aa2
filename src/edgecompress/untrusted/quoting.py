"""Quote a piece of untrusted input in an error message without quoting all of it.

A value from a recipe or a file's metadata can be megabytes long, or (through YAML aliases) a structure far
larger than the file; `reprlib` stops after a few items and levels, so quoting costs the same either way.

>>> quote("x" * 1000)
"'xxxxxxxxxxxxxxxxxxxxxxxxxxxxx...xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'"
>>> quote(list(range(100)))
'[0, 1, 2, 3, 4, 5, ...]'
"""

from __future__ import annotations

import reprlib

MAX_QUOTED_CHARS = 64  # per quoted value; an error line quotes a few of them at most

_repr = reprlib.Repr()
_repr.maxstring = MAX_QUOTED_CHARS
_repr.maxother = MAX_QUOTED_CHARS
_repr.maxlong = 40
_repr.maxlevel = 2
for _name in ("maxlist", "maxtuple", "maxdict", "maxset", "maxfrozenset", "maxdeque", "maxarray"):
    setattr(_repr, _name, 6)


def quote(value) -> str:
    """`repr(value)` cut to about MAX_QUOTED_CHARS characters, whatever the size of `value`."""
    try:
        text = _repr.repr(value)
    except Exception:  # a repr that fails (an integer beyond Python's str limit, a broken object)
        return f"<a {type(value).__name__}>"
    return text if len(text) <= 2 * MAX_QUOTED_CHARS else text[: 2 * MAX_QUOTED_CHARS] + "..."
