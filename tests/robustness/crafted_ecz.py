"""Hostile `.ecz` files built byte by byte from docs/format.md, independent of edgecompress's writer.

Each is small and claims much more; the streams are real (the LZMA one does expand to ~1 GiB, the zlib
one to 2 GiB), so only the reader's checks keep memory bounded. Checksums are valid: the attacker can compute
them too, so they are no defence against a crafted file.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import struct
import zlib

MAGIC = b"\x89ECZ\r\n\x1a\n"
GIB = 1 << 30


def frame(manifest: dict | bytes, blobs: bytes = b"", onnx_sha: bytes = bytes(32), version: int = 2) -> bytes:
    """Header + payload as section 1 and 2 of docs/format.md say, with both checksums right."""
    listing = manifest if isinstance(manifest, bytes) else zlib.compress(json.dumps(manifest).encode())
    payload = struct.pack("<I", len(listing)) + listing + blobs
    head = struct.pack("<8sHQ32s", MAGIC, version, len(payload), onnx_sha)
    return head + hashlib.sha256(head + payload).digest() + payload


def blob(codec: str, offset: int, length: int, raw_length: int, shuffled: bool = False) -> dict:
    return {"codec": codec, "offset": offset, "length": length, "raw_length": raw_length, "shuffled": shuffled}


def lzma_zeros(chunks: int) -> tuple[bytes, int]:
    """(a raw LZMA2 stream, how many zero bytes it decodes to): ~2 MiB per chunk, `chunks` + 1 chunks.

    liblzma codes a long run of zeros as LZMA2 chunks of ~2 MiB; after the first, every chunk starts from the
    same state and dictionary contents, so its bytes repeat exactly. Repeating one is a valid stream (checked
    by decoding it in full once, when this was written: 512 chunks decode to 1,073,619,457 zeros, ~1 GiB)."""
    filters = [{"id": lzma.FILTER_LZMA2, "dict_size": 1 << 26, "mode": lzma.MODE_FAST, "mf": lzma.MF_HC3,
                "nice_len": 273, "depth": 1}]
    compressor = lzma.LZMACompressor(format=lzma.FORMAT_RAW, filters=filters)
    data = compressor.compress(bytes(6 << 20)) + compressor.flush()
    first, first_size = _lzma2_chunk(data, 0)
    repeated, repeated_size = _lzma2_chunk(data, len(first))
    end_of_stream = b"\x00"
    return first + repeated * chunks + end_of_stream, first_size + repeated_size * chunks


def _lzma2_chunk(data: bytes, at: int) -> tuple[bytes, int]:
    """One LZMA2 chunk (control byte, sizes, properties if reset, packed data) and its unpacked size."""
    control = data[at]
    assert control & 0x80, "an LZMA chunk"
    header = 6 if control >= 0xC0 else 5
    unpacked = ((control & 0x1F) << 16) + (data[at + 1] << 8) + data[at + 2] + 1
    packed = (data[at + 3] << 8) + data[at + 4] + 1
    return data[at : at + header + packed], unpacked


def zlib_zeros(count: int) -> bytes:
    """A zlib stream of `count` zero bytes (a multiple of 16 MiB), built from one fully flushed segment repeated:
    after a full flush deflate starts afresh, so every 16 MiB segment codes to the same bytes."""
    segment_size = 1 << 24
    assert count % segment_size == 0
    compressor = zlib.compressobj(9)
    compressor.compress(bytes(segment_size))
    compressor.flush(zlib.Z_FULL_FLUSH)
    segment = compressor.compress(bytes(segment_size)) + compressor.flush(zlib.Z_FULL_FLUSH)
    final_empty_block = b"\x03\x00"
    adler = ((count % 65521) << 16) | 1  # Adler-32 of `count` zeros: a = 1, b = count mod 65521
    return b"\x78\xda" + segment * (count // segment_size) + final_empty_block + struct.pack(">I", adler)


def codebook_claiming_8_gib(indices_stream: bytes, indices: int) -> bytes:
    """A two-entry codebook tensor of 8 x `indices` int8 elements (8.6 GB), its packed indices (all zero, ~1 GiB)
    an LZMA stream."""
    n = 8 * indices
    tensor = {"index": 0, "name": "w", "raw_length": n, "element_size": 1, "encoding": "codebook", "codebook": "00ff",
              "blobs": {"indices": blob("lzma2", 0, len(indices_stream), n // 8)}}
    skeleton = b"\x3a\x00"  # an empty graph field
    manifest = {"mode": "split", "onnx_length": n + 64, "tensors": [tensor],
                "skeleton": blob("none", len(indices_stream), len(skeleton), len(skeleton))}
    return frame(manifest, indices_stream + skeleton)


def lzma_stream_expanding_to_1_gib(stream: bytes, declared: int) -> bytes:
    """The whole-file mode with one LZMA2 blob that expands to ~1 GiB, declaring `declared` bytes."""
    manifest = {"mode": "whole", "onnx_length": declared, "onnx": blob("lzma2", 0, len(stream), declared)}
    return frame(manifest, stream)


def manifest_claiming_2_gib(stream: bytes) -> bytes:
    """A 2 MB file whose manifest claims a 2 GiB ONNX file, backed by a zlib blob that really inflates to it."""
    size = 2 * GIB
    manifest = {"mode": "whole", "onnx_length": size, "onnx": blob("zlib", 0, len(stream), size)}
    return frame(manifest, stream)


def manifest_inflating_to_2_gib(stream_of_zeros: bytes) -> bytes:
    """The manifest itself is a zlib stream of 2 GiB (zero bytes: not even JSON)."""
    return frame(stream_of_zeros)


def deeply_nested_manifest(depth: int = 100_000) -> bytes:
    text = '{"mode": "whole", "onnx_length": 1, "onnx": ' + "[" * depth + "]" * depth + "}"
    return frame(zlib.compress(text.encode(), 9))


def damaged_lzma() -> bytes:
    stream = bytearray(lzma.compress(b"\x08\x07" * 4096, format=lzma.FORMAT_RAW,
                                     filters=[{"id": lzma.FILTER_LZMA2, "dict_size": 1 << 13}]))
    stream[0] = 0x07  # not a valid LZMA2 control byte
    manifest = {"mode": "whole", "onnx_length": 8192, "onnx": blob("lzma2", 0, len(stream), 8192)}
    return frame(manifest, bytes(stream))
