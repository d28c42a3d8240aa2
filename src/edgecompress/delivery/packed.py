"""Packed artifacts (`.ecz`): an ONNX file stored at its real information size, restored bit-exactly.

ONNX stores zeros densely, so a 90%-sparse int8 model is only 4x smaller than fp32. A packed file keeps the
model's protobuf without its large tensors' bytes (the "skeleton"), and stores each of those tensors as
whichever is smallest: its bytes entropy-coded, a bitmask of non-zeros plus the non-zero values, or (ternary
and low-bit weights) a codebook of its few distinct values plus indices packed several to a byte. Unpacking
puts the bytes back into the same TensorProto fields and re-serializes, which reproduces the original file
exactly when it was written by protobuf (onnx.save_model, torch.onnx); `pack` checks that and otherwise
stores the whole file compressed. The byte layout is specified in docs/format.md.

>>> info = pack("final.onnx", "final.ecz")         # doctest: +SKIP
>>> info.ratio                                       # doctest: +SKIP
>>> unpack_to("final.ecz", "restored.onnx")          # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import lzma
import math
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError

from edgecompress.core.errors import UserError
from edgecompress.delivery import encoding as enc
from edgecompress.delivery.manifest import WholeManifest, read_manifest
from edgecompress.onnx.tensors import walk_tensors  # the tensor walk of docs/format.md, section 3
from edgecompress.storage.files import atomic_path, atomic_write_bytes
from edgecompress.untrusted.limits import MAX_MODEL_BYTES, MAX_PACKED_BYTES
from edgecompress.untrusted.onnx_files import check_onnx_model, parse_onnx
from edgecompress.untrusted.regular_files import read_regular

PARALLEL_BYTES = 16 * 1024 * 1024  # tensor bytes above which packing uses a thread per CPU

MAGIC = b"\x89ECZ\r\n\x1a\n"
FORMAT_VERSION = 2  # 2 added the codebook tensor encoding; version 1 files decode unchanged
# magic, version, payload length, SHA-256 of the ONNX bytes, SHA-256 of header[:50] + payload
_HEADER = struct.Struct("<8sHQ32s32s")
_CHECKED_HEADER = 50  # the header bytes covered by the packed checksum: all but the checksum itself
MIN_STRIPPED_BYTES = 1024  # smaller tensors stay in the skeleton: a table entry would cost more than it saves


@dataclass(frozen=True)
class TensorPacking:
    """How one tensor was stored: `packed_bytes` counts its stored blobs (the file's table entry aside)."""

    name: str
    data_type: str
    elements: int
    raw_bytes: int
    packed_bytes: int
    encoding: str  # "dense" (bytes entropy-coded), "bitmask" (mask of non-fill elements + their values) or
    # "codebook" (the few distinct elements + indices packed several to a byte)

    @property
    def bytes_per_param(self) -> float:
        return self.packed_bytes / max(1, self.elements)


@dataclass(frozen=True)
class PackInfo:
    """What `pack` wrote. `mode` is "split" (per-tensor encodings) or "whole" (the file compressed as is)."""

    path: Path
    packed_bytes: int
    onnx_bytes: int
    mode: str
    tensors: tuple[TensorPacking, ...]
    fallback_reason: str | None = None

    @property
    def ratio(self) -> float:
        return self.onnx_bytes / self.packed_bytes


def pack(onnx_path: str | os.PathLike, target_path: str | os.PathLike) -> PackInfo:
    """Write `onnx_path` as a packed file at `target_path` (atomically); `unpack` restores it bit-exactly."""
    source, target = Path(onnx_path), Path(target_path)
    original = read_regular(source, "ONNX file", MAX_MODEL_BYTES)
    if target.exists() and target.resolve() == source.resolve():
        raise UserError(f"pack: target {target} is the ONNX file itself; choose another path, "
                        f"e.g. {source.with_suffix('.ecz')}")
    model = parse_onnx(original, f"pack: {source}")
    check_onnx_model(model, source.parent, f"pack: {source}")  # external data out of its folder, huge tensors
    split = _split(model, original)
    if isinstance(split, str):
        data, tensors, reason = _whole_file(original), (), split
    else:
        skeleton, encoded, tensors = split
        data, reason = _container(original, skeleton, encoded), None
        try:
            restored = _decode(data, str(target), trusted=True)
        except UserError as exc:
            restored = exc
        if restored != original:  # never ship a file that does not restore exactly
            data, tensors, reason = _whole_file(original), (), "split encoding did not restore the file bit-exactly"
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    mode = "whole" if reason else "split"
    return PackInfo(target, len(data), len(original), mode, tuple(tensors), reason)


def unpack(packed_path: str | os.PathLike) -> bytes:
    """The original ONNX file's bytes; a corrupt, truncated or foreign file raises UserError."""
    path = Path(packed_path)
    return _decode(read_regular(path, "packed file", MAX_PACKED_BYTES), str(path))


def unpack_to(packed_path: str | os.PathLike, onnx_path: str | os.PathLike) -> Path:
    """Restore the ONNX file to `onnx_path` (atomically, after every check has passed) and return the path."""
    return atomic_write_bytes(onnx_path, unpack(packed_path))


# ---- ONNX side: which tensors are taken out, and putting them back ------------------------------------------

def _split(model: onnx.ModelProto, original: bytes):
    """(skeleton, [(index, tensor, raw)], [TensorPacking]) or, if re-serializing is not exact, the reason why."""
    stripped = []
    for index, tensor in enumerate(walk_tensors(model)):
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            raise UserError(
                f"pack: {tensor.name!r} is stored in an external data file; pack needs a self-contained ONNX file "
                "(re-save it with onnx.save_model(model, path, save_as_external_data=False))"
            )
        if tensor.HasField("raw_data") and len(tensor.raw_data) >= MIN_STRIPPED_BYTES:
            stripped.append((index, tensor, tensor.raw_data))
            tensor.ClearField("raw_data")
    skeleton = model.SerializeToString()
    for _, tensor, raw in stripped:
        tensor.raw_data = raw
    if model.SerializeToString() != original:
        return "re-serializing the ONNX protobuf does not reproduce the file's bytes (not written by protobuf?)"
    jobs = [(raw, enc.element_size(tensor.data_type, len(raw))) for _, tensor, raw in stripped]
    encoded = [(index, tensor, e) for (index, tensor, _), e in zip(stripped, _encode_all(jobs))]
    infos = [TensorPacking(t.name, _type_name(t.data_type), math.prod(t.dims), len(t.raw_data),
                           e.stored_bytes, e.encoding) for _, t, e in encoded]
    return skeleton, encoded, infos


def _encode_all(jobs: list[tuple[bytes, int]]) -> list[enc.EncodedTensor]:
    """`encode_tensor` of each (raw, element size). LZMA runs at about 1 MB/s on weights, so a model of tens of
    megabytes takes a minute on one core: above `PARALLEL_BYTES` the tensors are encoded by a thread per CPU,
    largest first. Threads, not processes: zlib and lzma release the GIL while they compress, and a process
    pool would re-import the caller's script (a user's script without a `__main__` guard would break)."""
    total = sum(len(raw) for raw, _ in jobs)
    workers = min(os.cpu_count() or 1, len(jobs))
    if total < PARALLEL_BYTES or workers < 2:
        return [enc.encode_tensor(raw, size) for raw, size in jobs]
    from concurrent.futures import ThreadPoolExecutor

    order = sorted(range(len(jobs)), key=lambda i: -len(jobs[i][0]))
    with ThreadPoolExecutor(workers) as pool:
        futures = {i: pool.submit(enc.encode_tensor, *jobs[i]) for i in order}
        return [futures[i].result() for i in range(len(jobs))]


def _restore(skeleton: bytes, indices: list[int], raws: list[bytes]) -> bytes:
    model = onnx.ModelProto()
    model.ParseFromString(skeleton)
    tensors = list(walk_tensors(model))
    for position, index in enumerate(indices):
        tensors[index].raw_data = raws[position]
        raws[position] = b""  # the protobuf holds its own copy: keep one copy of each tensor in memory
    return model.SerializeToString()


def _type_name(data_type: int) -> str:
    try:
        return onnx.TensorProto.DataType.Name(data_type)
    except ValueError:
        return f"type {data_type}"


# ---- container: header, checksums, manifest, blobs ----------------------------------------------------------

def _container(original: bytes, skeleton: bytes, encoded: list) -> bytes:
    area = enc.BlobArea()
    tensors = []
    for index, tensor, e in encoded:
        entry = {"index": index, "name": tensor.name, "raw_length": len(tensor.raw_data),
                 "element_size": e.element_size, "encoding": e.encoding,
                 "blobs": {role: area.put(blob) for role, blob in e.blobs.items()}}
        if e.encoding == "bitmask":
            entry["fill"] = e.fill.hex()
        if e.encoding == "codebook":
            entry["codebook"] = e.codebook.hex()
        tensors.append(entry)
    manifest = {"mode": "split", "onnx_length": len(original), "skeleton": area.put(enc.best_blob(skeleton)),
                "tensors": tensors}
    return _frame(original, manifest, area)


def _whole_file(original: bytes) -> bytes:
    area = enc.BlobArea()
    manifest = {"mode": "whole", "onnx_length": len(original), "onnx": area.put(enc.best_blob(original))}
    return _frame(original, manifest, area)


def _frame(original: bytes, manifest: dict, area: enc.BlobArea) -> bytes:
    listing = zlib.compress(json.dumps(manifest, separators=(",", ":")).encode("utf-8"), 9)
    payload = b"".join([struct.pack("<I", len(listing)), listing, *area.parts])
    head = struct.pack("<8sHQ32s", MAGIC, FORMAT_VERSION, len(payload), hashlib.sha256(original).digest())
    return head + hashlib.sha256(head + payload).digest() + payload


def _decode(data: bytes, label: str, trusted: bool = False) -> bytes:
    """The ONNX bytes of a packed file; `trusted` (our own output, checked by `pack`) lifts the ratio budget."""
    where = f"packed file {label}"
    if data[:8] != MAGIC and not (len(data) < 8 and MAGIC.startswith(data)):
        raise UserError(f"{where} is not an edgecompress packed file (.ecz): it does not start with the magic bytes")
    if len(data) < _HEADER.size:
        raise UserError(f"{where} is truncated: {len(data)} bytes, shorter than the {_HEADER.size}-byte header")
    _, version, length, onnx_sha, packed_sha = _HEADER.unpack_from(data)
    if version == 0:
        raise UserError(f"{where} is corrupt: format version 0 does not exist")
    if version > FORMAT_VERSION:
        raise UserError(f"{where} uses format version {version}, newer than this edgecompress reads "
                        f"(up to {FORMAT_VERSION}); upgrade edgecompress to unpack it")
    have = len(data) - _HEADER.size
    if have < length:
        raise UserError(f"{where} is truncated: the payload has {have} of its {length} bytes")
    if have > length:
        raise UserError(f"{where} is corrupt: {have - length} unexpected bytes after the payload")
    payload = memoryview(data)[_HEADER.size:]
    checksum = hashlib.sha256(data[:_CHECKED_HEADER])
    checksum.update(payload)
    if checksum.digest() != packed_sha:
        raise UserError(f"{where} is corrupt: checksum mismatch")
    try:
        onnx_bytes = _decode_payload(payload, None if trusted else len(data), where)
    except (ValueError, IndexError, OverflowError, struct.error, zlib.error, lzma.LZMAError, DecodeError) as exc:
        raise UserError(f"{where} is corrupt: {str(exc)[:200]}") from None
    if hashlib.sha256(onnx_bytes).digest() != onnx_sha:
        raise UserError(f"{where} is corrupt: checksum mismatch of the restored ONNX bytes")
    return onnx_bytes


def _decode_payload(payload: memoryview, packed_bytes: int | None, where: str) -> bytes:
    """Every declared size is checked (`read_manifest`) before any blob is decompressed."""
    (listing_length,) = struct.unpack_from("<I", payload)
    if 4 + listing_length > len(payload):
        raise ValueError(f"the manifest claims {listing_length:,} bytes of a {len(payload):,}-byte payload")
    area = payload[4 + listing_length :]
    manifest = read_manifest(payload[4 : 4 + listing_length], len(area), packed_bytes, where)
    if isinstance(manifest, WholeManifest):
        out = enc.read_blob(manifest.onnx, area, 1)
    else:
        entries = manifest.tensors
        raws = [enc.decode_tensor(e.encoding, e.element_size, e.raw_length, bytes.fromhex(e.fill),
                                  {role: enc.read_blob(d, area, e.element_size) for role, d in e.blobs.items()},
                                  bytes.fromhex(e.codebook))
                for e in entries]
        out = _restore(enc.read_blob(manifest.skeleton, area, 1), [e.index for e in entries], raws)
    if len(out) != manifest.onnx_length:
        raise ValueError(f"restored {len(out)} bytes, expected {manifest.onnx_length}")
    return out
