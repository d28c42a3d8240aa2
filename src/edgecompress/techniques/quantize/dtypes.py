"""The classic data-type table: how one number survives each storage format.

It makes the cost of fewer bits concrete before any model is touched: fp16 and bf16 keep pi to about 0.03%,
int8 to about 0.3% *if* its scale fits the tensor's range, int4 to about 9%. Float rows are real torch
casts (round to nearest even), so they show exactly what the hardware stores.

Integer rows are symmetric, as weights are stored in int8 (FINDINGS sec. 3): `scale = int_max_abs / qmax` with
qmax = 127 for int8 and 7 for int4, code = round(value / scale) clipped to [-qmax, qmax]. `int_max_abs` stands
for the largest magnitude in the tensor the value belongs to; the default 4.0 is an illustrative range that
contains pi. A value beyond it is clipped, which is the other way integer formats lose accuracy.
"""

from __future__ import annotations

import math
import numbers
import sys
from dataclasses import dataclass

import torch
from rich.table import Table

from edgecompress.core.errors import UserError

FLOAT_DTYPES = (
    ("fp64", torch.float64),
    ("fp32", torch.float32),
    ("fp16", torch.float16),
    ("bf16", torch.bfloat16),
    ("fp8 e4m3", torch.float8_e4m3fn),
    ("fp8 e5m2", torch.float8_e5m2),
)
INT_BITS = (8, 4)
MIN_INT_RANGE = 127 * sys.float_info.min  # below it the int8 scale (range / 127) is no longer a normal float


@dataclass(frozen=True)
class DtypeRow:
    """One storage format: what `value` becomes in it and how far that is from the original."""

    dtype: str
    bits: int
    represented: float
    abs_error: float
    percent_error: float
    note: str = ""


def dtype_table(value: float = math.pi, int_max_abs: float = 4.0) -> list[DtypeRow]:
    """`value` as stored in fp64, fp32, fp16, bf16, fp8 (e4m3, e5m2), int8 and int4, widest first.

    Errors are measured against `value` as given (a Python float, i.e. fp64), so the fp64 row is exact.

    >>> rows = dtype_table()
    >>> [(r.dtype, r.represented) for r in rows if r.dtype in ("fp16", "bf16")]
    [('fp16', 3.140625), ('bf16', 3.140625)]
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise UserError(f"value: must be a finite number, got {value!r}")
    if isinstance(int_max_abs, bool) or not isinstance(int_max_abs, numbers.Real) or not MIN_INT_RANGE <= int_max_abs < math.inf:
        raise UserError(f"int_max_abs: must be a positive finite number of at least {MIN_INT_RANGE:.3g} (the tensor's largest magnitude), got {int_max_abs!r}")
    value = float(value)
    rows = []
    for name, dtype in FLOAT_DTYPES:
        represented = torch.tensor(value, dtype=torch.float64).to(dtype).to(torch.float64).item()
        rows.append(_row(name, torch.finfo(dtype).bits, value, represented, _float_note(dtype, value, represented)))
    for bits in INT_BITS:
        qmax = 2 ** (bits - 1) - 1
        scale = int_max_abs / qmax
        code = round(max(-qmax, min(qmax, value / scale)))  # clip before rounding: value / scale may overflow
        clipped = " (clipped)" if abs(value) > int_max_abs else ""
        note = f"code {code} x scale {int_max_abs:g}/{qmax}{clipped}"
        rows.append(_row(f"int{bits}", bits, value, code * scale, note))
    return rows


def format_dtype_table(rows: list[DtypeRow], title: str | None = None) -> Table:
    """A rich table of `rows` for the terminal.

    >>> from rich.console import Console
    >>> Console().print(format_dtype_table(dtype_table()))  # doctest: +SKIP
    """
    table = Table(title=title)
    for header in ("dtype", "bits", "stored value", "abs error", "error %", "note"):
        table.add_column(header, justify="left" if header in ("dtype", "note") else "right")
    for r in rows:
        table.add_row(r.dtype, str(r.bits), f"{r.represented:.10g}", f"{r.abs_error:.3g}", f"{r.percent_error:.3g}", r.note)
    return table


def _row(name: str, bits: int, value: float, represented: float, note: str) -> DtypeRow:
    abs_error = abs(represented - value)
    if value != 0:
        percent = 100.0 * abs_error / abs(value)
    else:  # zero is exact in every format here; keep the column finite
        percent = 0.0 if abs_error == 0 else math.inf
    return DtypeRow(name, bits, represented, abs_error, percent, note)


def _float_note(dtype: torch.dtype, value: float, represented: float) -> str:
    info = torch.finfo(dtype)
    if abs(value) > info.max:  # fp8 e4m3fn has no inf: torch saturates it to +-448
        return f"overflow: stored as {represented:g}"
    if value != 0 and represented == 0:
        return "underflow: stored as 0"
    return f"{_mantissa_bits(dtype)} mantissa bits, max {info.max:.4g}"


def _mantissa_bits(dtype: torch.dtype) -> int:
    # eps = 2 ** -mantissa_bits for every IEEE-like format torch knows.
    return round(-math.log2(torch.finfo(dtype).eps))
