"""Check a safetensors file before any tensor is read: a regular file under the size limit, a header of a
sane length, parsed and validated by the `safetensors` library itself, only known dtypes, no huge tensor.

The library already refuses offsets that do not match shapes and dtypes or leave the file uncovered, so a
file must really hold the bytes it declares; what it cannot know is what we are willing to load.

>>> header = read_safetensors_header("model.safetensors", "--weights")  # doctest: +SKIP
>>> header.metadata.get("edgecompress.arch")                             # doctest: +SKIP
'digits-cnn'
"""

from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from edgecompress.core.errors import UserError, first_line
from edgecompress.untrusted.limits import MAX_MODEL_BYTES, MAX_SAFETENSORS_HEADER_BYTES, MAX_TENSOR_BYTES
from edgecompress.untrusted.quoting import quote
from edgecompress.untrusted.regular_files import open_regular

# dtypes torch loads as ordinary tensors, with their bytes per element
DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
               "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1, "U16": 2, "U32": 4, "U64": 8}


@dataclass(frozen=True)
class SafetensorsHeader:
    metadata: dict[str, str]
    shapes: dict[str, tuple[str, tuple[int, ...]]]  # name -> (dtype, shape)


def read_safetensors_header(path: str | os.PathLike, field: str) -> SafetensorsHeader:
    """The checked header of `path`; every refusal is a one-line UserError starting with `field`."""
    from safetensors import safe_open

    path = Path(path)
    with open_regular(path, f"{field}: file", MAX_MODEL_BYTES) as handle:
        prefix = handle.read(8)
        size = os.fstat(handle.fileno()).st_size
    if len(prefix) < 8:
        raise UserError(f"{field}: {path} is not a valid safetensors file (shorter than its 8-byte header length)")
    (header_length,) = struct.unpack("<Q", prefix)
    if header_length > size - 8:
        raise UserError(f"{field}: {path} is not a valid safetensors file (its header claims {header_length:,} bytes; "
                        f"the file has {size - 8:,} after the length)")
    MAX_SAFETENSORS_HEADER_BYTES.check(header_length, f"{field}: the safetensors header of {path}")
    try:
        with safe_open(str(path), framework="pt") as opened:
            metadata = dict(opened.metadata() or {})
            shapes = {name: (opened.get_slice(name).get_dtype(), tuple(opened.get_slice(name).get_shape()))
                      for name in opened.keys()}
    except Exception as exc:  # SafetensorError, OSError, ...: the library's reason, one line
        raise UserError(f"{field}: {path} is not a valid safetensors file ({first_line(exc)[:200]})") from None
    for name, (dtype, shape) in shapes.items():
        if dtype not in DTYPE_BYTES:
            raise UserError(f"{field}: tensor {quote(name)} of {path} has dtype {dtype}, which edgecompress does not "
                            f"load (allowed: {', '.join(DTYPE_BYTES)})")
        MAX_TENSOR_BYTES.check(math.prod(shape) * DTYPE_BYTES[dtype], f"{field}: tensor {quote(name)} of {path}")
    return SafetensorsHeader(metadata, shapes)


def load_safetensors(path: str | os.PathLike, field: str) -> tuple[dict, dict[str, str]]:
    """(tensors, metadata) of a checked safetensors file."""
    from safetensors.torch import load_file

    header = read_safetensors_header(path, field)
    try:
        return load_file(str(path)), header.metadata
    except Exception as exc:  # the file changed between the check and the load
        raise UserError(f"{field}: {path} is not a valid safetensors file ({first_line(exc)[:200]})") from None
