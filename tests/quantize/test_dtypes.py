import math

import pytest
from rich.console import Console
from rich.table import Table

from edgecompress.core.errors import UserError
from edgecompress.techniques.quantize.dtypes import dtype_table, format_dtype_table


def by_name(rows):
    return {r.dtype: r for r in rows}


def test_pi_in_each_format_is_what_the_hardware_stores():
    rows = by_name(dtype_table())
    assert rows["fp64"].represented == math.pi and rows["fp64"].abs_error == 0
    assert rows["fp32"].represented == pytest.approx(3.1415927410125732, abs=0)
    # 2.78e-6 percent, i.e. a relative error of 2.8e-8 (below fp32's 2**-24 = 6e-8 half-ulp bound)
    assert rows["fp32"].percent_error == pytest.approx(2.7827e-6, rel=1e-3)
    assert rows["fp32"].percent_error / 100 < 2**-24
    assert rows["fp16"].represented == 3.140625
    assert rows["bf16"].represented == 3.140625  # 7 mantissa bits, but pi happens to land on the same value
    assert rows["fp8 e4m3"].represented == 3.25
    assert rows["fp8 e5m2"].represented == 3.0
    assert rows["fp16"].percent_error == pytest.approx(100 * (math.pi - 3.140625) / math.pi)


def test_int8_is_symmetric_with_scale_max_abs_over_127():
    rows = by_name(dtype_table(math.pi, int_max_abs=4.0))
    assert rows["int8"].bits == 8 and rows["int4"].bits == 4
    assert rows["int8"].represented == pytest.approx(100 * 4.0 / 127)  # round(pi / (4/127)) = 100
    assert rows["int8"].percent_error == pytest.approx(0.2551, abs=1e-4)
    assert rows["int4"].represented == pytest.approx(5 * 4.0 / 7)
    assert "code 100" in rows["int8"].note


def test_a_tighter_int8_range_is_more_precise():
    wide, tight = by_name(dtype_table(math.pi, 4.0)), by_name(dtype_table(math.pi, math.pi))
    assert tight["int8"].abs_error < 1e-12 < wide["int8"].abs_error


def test_rows_go_from_widest_to_narrowest():
    bits = [r.bits for r in dtype_table()]
    assert bits == sorted(bits, reverse=True) and bits[0] == 64


def test_out_of_range_values_overflow_or_clip():
    rows = by_name(dtype_table(1e6))
    assert math.isinf(rows["fp16"].represented) and "overflow" in rows["fp16"].note
    assert rows["fp8 e4m3"].represented == 448  # e4m3fn has no infinity: torch saturates
    assert rows["int8"].represented == 4.0 and "clipped" in rows["int8"].note
    assert rows["bf16"].percent_error < 0.1  # fp32's exponent range, so no overflow


def test_zero_is_exact_everywhere():
    assert all(r.represented == 0 and r.percent_error == 0 for r in dtype_table(0.0))


def test_format_dtype_table_renders_every_row():
    table = format_dtype_table(dtype_table())
    assert isinstance(table, Table) and table.row_count == len(dtype_table())
    console = Console(width=120, record=True)
    console.print(table)
    text = console.export_text()
    assert "3.140625" in text and "int8" in text


@pytest.mark.parametrize("kwargs, message", [
    ({"value": math.inf}, "value: must be a finite number"),
    ({"value": "pi"}, "value: must be a finite number"),
    ({"int_max_abs": 0}, "int_max_abs: must be a positive"),
])
def test_bad_arguments_are_user_errors(kwargs, message):
    with pytest.raises(UserError, match=message):
        dtype_table(**kwargs)
