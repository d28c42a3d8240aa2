"""docs/security.md stays true: every test it cites exists, and every limit is in its table with its default."""

from __future__ import annotations

import re
from pathlib import Path

from edgecompress.untrusted.limits import ALL_LIMITS, GIB, MIB

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")


def test_every_test_the_security_doc_cites_exists():
    defined = set(re.findall(r"^def (test_\w+)", "\n".join(p.read_text() for p in (ROOT / "tests" / "robustness").glob("test_*.py")), re.M))
    files = {p.stem for p in (ROOT / "tests" / "robustness").glob("test_*.py")}
    cited = set(re.findall(r"\b(test_\w+)", DOC)) - files
    assert cited and cited <= defined, sorted(cited - defined)


def _written(value: int) -> str:
    for unit, size in (("GiB", GIB), ("MiB", MIB)):
        if value % size == 0:
            return f"{value // size} {unit}"
    return f"{value:,}"


def test_every_limit_is_in_the_table_with_its_default():
    for limit in ALL_LIMITS:
        row = next((line for line in DOC.splitlines() if line.startswith(f"| `{limit.env}`")), None)
        assert row is not None, limit.env
        assert row.split("|")[2].strip().startswith(_written(limit.default)), (limit.env, row)
