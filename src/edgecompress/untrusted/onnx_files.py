"""Check an ONNX file before ONNX Runtime or `onnx` reads its data: a regular file under the size limit, every
tensor's declared size under the tensor limit, and external data only in files inside the model's folder.

An ONNX file is a graph of standard operators, not code, but a tensor may keep its bytes in another file
("external data", a path). A file from elsewhere naming `../../home/you/.ssh/id_rsa` or `/etc/shadow` would
have them read as weights; ONNX Runtime and `onnx` refuse `..` themselves today, and this check runs first,
whatever their version, and also refuses links that lead out and tensors larger than the limit.

>>> model = check_onnx_file("artifact/model.onnx")            # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError
from onnx.external_data_helper import ExternalDataInfo, uses_external_data

from edgecompress.core.errors import UserError
from edgecompress.onnx.tensors import walk_tensors
from edgecompress.untrusted.limits import MAX_MODEL_BYTES, MAX_TENSOR_BYTES
from edgecompress.untrusted.paths import confined
from edgecompress.untrusted.quoting import quote
from edgecompress.untrusted.regular_files import check_regular, read_regular


def check_onnx_file(path: str | os.PathLike, what: str = "ONNX file") -> onnx.ModelProto:
    """The parsed model (external data not loaded) once every check has passed; else a one-line UserError."""
    path = Path(path)
    model = parse_onnx(read_regular(path, what, MAX_MODEL_BYTES), f"{what} {path}")
    check_onnx_model(model, path.parent, f"{what} {path}")
    return model


def parse_onnx(data: bytes, where: str) -> onnx.ModelProto:
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError):  # RuntimeError: protobuf's nesting limit
        raise UserError(f"{where} is not an ONNX model (its bytes are not a valid ModelProto)") from None
    if not model.HasField("graph"):
        raise UserError(f"{where} is not an ONNX model (it has no graph)")
    return model


def check_onnx_model(model: onnx.ModelProto, folder: Path | None, where: str) -> None:
    """Every tensor's declared size, and its external data (none allowed when `folder` is None)."""
    external_total = 0
    for tensor in walk_tensors(model, everything=True):
        if any(d < 0 for d in tensor.dims):
            raise UserError(f"{where}: tensor {quote(tensor.name)} has a negative dimension")
        MAX_TENSOR_BYTES.check(math.prod(tensor.dims) * _element_bytes(tensor.data_type),
                               f"{where}: tensor {quote(tensor.name)} (as its shape declares)")
        if uses_external_data(tensor):
            external_total += _check_external(tensor, folder, where)
            MAX_MODEL_BYTES.check(external_total, f"{where}: its external data")


def _check_external(tensor: onnx.TensorProto, folder: Path | None, where: str) -> int:
    name = quote(tensor.name)
    try:
        info = ExternalDataInfo(tensor)
    except ValueError as exc:
        raise UserError(f"{where}: tensor {name} has malformed external data ({str(exc)[:120]})") from None
    target = confined(folder, info.location) if folder is not None else None
    if target is None:
        raise UserError(f"{where}: tensor {name} keeps its data in {quote(info.location)}, outside the model's folder; "
                        "external data must be a relative path to a file inside it (no .., no absolute path, no link out)")
    size = check_regular(target, f"{where}: external data file", MAX_MODEL_BYTES)
    offset = info.offset or 0
    length = info.length if info.length is not None else size - offset
    if offset + length > size:
        raise UserError(f"{where}: tensor {name} claims {length:,} bytes at offset {offset:,} of {quote(info.location)}, "
                        f"which has {size:,}")
    MAX_TENSOR_BYTES.check(length, f"{where}: tensor {name} (its external data)")
    return length


def _element_bytes(data_type: int) -> int:
    try:
        return max(1, onnx.helper.tensor_dtype_to_np_dtype(data_type).itemsize)
    except (KeyError, ValueError, TypeError):  # unknown types: count a byte each
        return 1
