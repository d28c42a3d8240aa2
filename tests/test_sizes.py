import pytest

from edgecompress.core.errors import UserError
from edgecompress.core.sizes import format_bytes, parse_size


@pytest.mark.parametrize(
    "text, expected",
    [("50KB", 50_000), ("50kb", 50_000), ("48KiB", 49_152), ("48K", 49_152), ("1.5MB", 1_500_000), ("123", 123), ("7 B", 7)],
)
def test_parse_size_accepts_decimal_and_binary_units(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "5ZB", "-3KB", "0", "1,5MB", "KB"])
def test_parse_size_rejects_garbage_with_the_field_name(text):
    with pytest.raises(UserError, match="--target-size"):
        parse_size(text, field="--target-size")


def test_format_bytes_uses_decimal_units():
    assert format_bytes(999) == "999 B"
    assert format_bytes(214_508) == "214.5 KB"
