"""Human sizes: parse '50KB' / '1.5MiB' and print byte counts the same way everywhere."""

from __future__ import annotations

import re

from edgecompress.core.errors import UserError

_UNITS = {
    "b": 1,
    "kb": 1000, "mb": 1000**2, "gb": 1000**3,
    "k": 1024, "kib": 1024, "m": 1024**2, "mib": 1024**2, "g": 1024**3, "gib": 1024**3,
}
MAX_SIZE = 10**15  # 1 PB: beyond any model file, and far below float overflow
_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*$")


def parse_size(text: str, field: str = "size") -> int:
    """Parse a size such as '50KB' (1000-based), '48KiB' or '48K' (1024-based), or '51200B' into bytes.

    A bare number is refused: `--target-size 20` meant as 20 KB must not be read as 20 bytes.

    >>> parse_size("50KB")
    50000
    """
    text = str(text)
    shown = text if len(text) <= 40 else text[:40] + "..."
    match = _SIZE.match(text) if len(text) <= 1000 else None
    unit = match.group(2).lower() if match else None
    if unit == "":
        number = match.group(1) if len(match.group(1)) <= 20 else "N"
        raise UserError(
            f"{field}: {shown!r} has no unit, so it could mean bytes or kilobytes; give a unit: "
            f"{number}KB (1000-based), {number}KiB (1024-based) or {number}B"
        )
    if not match or unit not in _UNITS:
        raise UserError(
            f"{field}: cannot parse {shown!r} as a size; use a number with a unit "
            "B, KB, MB, GB (1000-based) or KiB, MiB, GiB (1024-based), e.g. 50KB"
        )
    value = float(match.group(1)) * _UNITS[unit]
    if not 0 < value <= MAX_SIZE:
        raise UserError(f"{field}: size must be positive and at most 1 PB, got {shown!r}")
    return int(round(value))


def format_bytes(n: float) -> str:
    """Format a byte count with a 1000-based unit (the convention of file managers and `ls -h --si`)."""
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")
