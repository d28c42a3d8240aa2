import pytest

from edgecompress.core.errors import UserError
from edgecompress.core.sizes import format_bytes, parse_size


@pytest.mark.parametrize(
    "text, expected",
    [("50KB", 50_000), ("50kb", 50_000), ("48KiB", 49_152), ("48K", 49_152), ("1.5MB", 1_500_000), ("123B", 123), ("7 B", 7)],
)
def test_parse_size_accepts_decimal_and_binary_units(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "5ZB", "-3KB", "0", "1,5MB", "KB"])
def test_parse_size_rejects_garbage_with_the_field_name(text):
    with pytest.raises(UserError, match="--target-size"):
        parse_size(text, field="--target-size")


@pytest.mark.parametrize("text, fix", [("20", "20KB (1000-based), 20KiB (1024-based) or 20B"), (" 1.5 ", "1.5KB"), ("9" * 30, "NKB")])
def test_a_bare_number_is_refused_with_the_units_to_give(text, fix):
    with pytest.raises(UserError, match=r"^--target-size: .* has no unit, so it could mean bytes or kilobytes; give a unit: ") as caught:
        parse_size(text, field="--target-size")
    assert fix in str(caught.value) and "\n" not in str(caught.value)


def test_format_bytes_uses_decimal_units():
    assert format_bytes(999) == "999 B"
    assert format_bytes(214_508) == "214.5 KB"
