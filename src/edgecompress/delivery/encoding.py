"""How one tensor's bytes are stored in a packed file: dense, a bitmask plus the kept values, or a codebook of
its few distinct elements plus their indices packed several to a byte; each blob entropy-coded.

Every encoding here works on the tensor's raw bytes, so it is lossless whatever the bytes mean (-0.0, NaN
payloads, 4-bit types). The element size only decides what counts as one element and how bytes are
shuffled; a wrong guess costs compression, never correctness. Layouts are described in docs/format.md.
"""

from __future__ import annotations

import lzma
import zlib
from dataclasses import dataclass

import numpy as np

CODECS = ("none", "zlib", "lzma2")

_ELEMENT_SIZE = {  # onnx.TensorProto.DataType -> bytes per element in raw_data
    1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 14: 4, 15: 8, 16: 2,
}


def element_size(data_type: int, raw_length: int) -> int:
    """Bytes per element for a TensorProto data type; 1 for sub-byte or unknown types, or if it does not divide."""
    size = _ELEMENT_SIZE.get(data_type, 1)
    return size if raw_length % size == 0 else 1


@dataclass(frozen=True)
class Blob:
    """One byte string as stored: `stored` is `codec`-compressed; decompressed it has `raw_length` bytes."""

    codec: str
    stored: bytes
    raw_length: int
    shuffled: bool


@dataclass(frozen=True)
class EncodedTensor:
    encoding: str  # "dense", "bitmask" or "codebook"
    element_size: int
    blobs: dict[str, Blob]  # dense: {"data"}; bitmask: {"mask", "values"}; codebook: {"indices"}
    fill: bytes = b""  # bitmask only: the value of every element whose mask bit is 0
    codebook: bytes = b""  # codebook only: the distinct elements, concatenated (indices count into it)

    @property
    def stored_bytes(self) -> int:
        return sum(len(b.stored) for b in self.blobs.values())


def compress(data: bytes, codec: str) -> bytes:
    if codec == "none":
        return bytes(data)
    if codec == "zlib":
        return zlib.compress(data, 6)  # level 9 gains ~1% and runs 20x slower on byte-shuffled sparse data
    if codec == "lzma2":
        filters = [{"id": lzma.FILTER_LZMA2, "preset": 9, "dict_size": lzma2_dict_size(len(data))}]
        return lzma.compress(data, format=lzma.FORMAT_RAW, filters=filters)
    raise ValueError(f"unknown codec {codec!r}")


def decompress(stored: bytes, codec: str, raw_length: int) -> bytes:
    """Inverse of `compress`; raises ValueError unless exactly `raw_length` bytes come out."""
    if codec == "none":
        out, complete = bytes(stored), True
    elif codec == "zlib":  # both bounded to raw_length + 1 bytes: a stream that would inflate further stops there
        inflater = zlib.decompressobj()
        out = inflater.decompress(stored, raw_length + 1)  # (max_length 0 would mean "no limit")
        complete = inflater.eof and not inflater.unused_data
    elif codec == "lzma2":
        filters = [{"id": lzma.FILTER_LZMA2, "dict_size": lzma2_dict_size(raw_length)}]
        decoder = lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=filters)
        out = decoder.decompress(stored, max_length=raw_length + 1)
        complete = decoder.eof and not decoder.unused_data
    else:
        raise ValueError(f"unknown codec {codec!r}")
    if len(out) != raw_length or not complete:
        raise ValueError(f"{codec} data does not decode to {raw_length} bytes")
    return out


def lzma2_dict_size(raw_length: int) -> int:
    """Raw LZMA2 has no header: both sides derive the dictionary size from the length (4 KiB..64 MiB)."""
    return min(max(4096, 1 << max(0, raw_length - 1).bit_length()), 1 << 26)


def shuffle(data: bytes, size: int) -> bytes:
    """Byte planes: all first bytes of the elements, then all second bytes... (floats' exponents compress)."""
    return np.frombuffer(data, np.uint8).reshape(-1, size).T.tobytes() if size > 1 else bytes(data)


def unshuffle(data: bytes, size: int) -> bytes:
    return np.frombuffer(data, np.uint8).reshape(size, -1).T.tobytes() if size > 1 else bytes(data)


# A tensor with few distinct elements (ternary or low-bit QAT weights after int8) is stored as indices into
# a codebook, packed `per_byte(K)` to a byte: 5 ternary indices per byte is 1.6 bits, within 1% of log2(3).
# LZMA and zlib code such bytes at 1.8-2 bits per weight (they learn the 3 symbols bit by bit, per context).
MAX_CODEBOOK = 16  # beyond this, two indices per byte are no tighter than the bytes themselves entropy-coded


def per_byte(distinct: int) -> int:
    """How many indices into a codebook of `distinct` entries one byte holds: the largest g with distinct^g <= 256."""
    g = 1
    while distinct ** (g + 1) <= 256:
        g += 1
    return g


def pack_indices(indices: np.ndarray, distinct: int) -> bytes:
    """Indices (each < distinct) as base-`distinct` digits, `per_byte` to a byte, the first the most significant;
    the last byte is padded with index 0."""
    g = per_byte(distinct)
    digits = np.zeros(-(-indices.size // g) * g, np.int64)
    digits[: indices.size] = indices
    weights = distinct ** np.arange(g - 1, -1, -1, dtype=np.int64)
    return (digits.reshape(-1, g) @ weights).astype(np.uint8).tobytes()


def unpack_indices(data: bytes, distinct: int, count: int) -> np.ndarray:
    g = per_byte(distinct)
    if len(data) != -(-count // g):
        raise ValueError(f"codebook indices have {len(data)} bytes, expected {-(-count // g)}")
    values = np.frombuffer(data, np.uint8).astype(np.uint16)  # uint16: `distinct` may be 256
    if values.size and values.max() >= distinct**g:
        raise ValueError(f"a codebook index byte exceeds {distinct}^{g} - 1")
    digits = np.empty((values.size, g), np.uint8)  # one byte per element: memory stays at the tensor's size
    for j in range(g - 1, -1, -1):
        values, digits[:, j] = np.divmod(values, distinct)
    return digits.reshape(-1)[:count]


def encode_tensor(raw: bytes, size: int) -> EncodedTensor:
    """The smallest of dense / bitmask (each with and without byte shuffling) / codebook, each blob with its
    best codec.

    Layouts are ranked by their zlib size (fast); only the winner is also tried with LZMA2, which runs at
    about 1 MB/s on weights and would dominate packing time if run on every candidate.
    """
    elements = np.frombuffer(raw, np.uint8).reshape(-1, size)
    fill = _most_common(elements)
    keep = np.any(elements != np.frombuffer(fill, np.uint8), axis=1)
    mask, values = np.packbits(keep).tobytes(), elements[keep].tobytes()
    shuffles = (False, True) if size > 1 else (False,)
    candidates = [("dense", {"data": (raw, s)}) for s in shuffles]
    candidates += [("bitmask", {"mask": (mask, False), "values": (values, s)}) for s in shuffles]
    codebook, indices = _codebook(elements)
    if codebook:
        candidates.append(("codebook", {"indices": (pack_indices(indices, len(codebook) // size), False)}))
    ranked = [(_encode(e, blobs, size, fill, ("none", "zlib"), codebook), e, blobs) for e, blobs in candidates]
    best = min(ranked, key=lambda r: r[0].stored_bytes + len(r[0].codebook))
    return _encode(best[1], best[2], size, fill, CODECS, codebook)


def decode_tensor(encoding: str, size: int, raw_length: int, fill: bytes, blobs: dict[str, bytes],
                  codebook: bytes = b"") -> bytes:
    """Rebuild raw bytes from decompressed, unshuffled blobs; raises ValueError if they do not fit together."""
    if size < 1 or raw_length % size:
        raise ValueError(f"element size {size} does not divide {raw_length} bytes")
    if encoding == "dense":
        data = blobs["data"]
        if len(data) != raw_length:
            raise ValueError(f"dense data has {len(data)} bytes, expected {raw_length}")
        return data
    if encoding == "codebook":
        distinct = len(codebook) // size
        if len(codebook) % size or not 2 <= distinct <= 256:
            raise ValueError(f"codebook of {len(codebook)} bytes is not 2-256 elements of {size} bytes")
        entries = np.frombuffer(codebook, np.uint8).reshape(distinct, size)
        return entries[unpack_indices(blobs["indices"], distinct, raw_length // size)].tobytes()
    if encoding != "bitmask":
        raise ValueError(f"unknown tensor encoding {encoding!r}")
    count = raw_length // size
    if len(blobs["mask"]) != (count + 7) // 8 or len(fill) != size:
        raise ValueError("bitmask or fill value has the wrong length")
    keep = np.unpackbits(np.frombuffer(blobs["mask"], np.uint8), count=count).astype(bool)
    values = np.frombuffer(blobs["values"], np.uint8)
    if values.size != int(keep.sum()) * size:
        raise ValueError(f"bitmask keeps {int(keep.sum())} elements but {values.size} value bytes are stored")
    out = np.empty((count, size), np.uint8)
    out[:] = np.frombuffer(fill, np.uint8)
    out[keep] = values.reshape(-1, size)
    return out.tobytes()


def best_blob(data: bytes, codecs=CODECS, shuffled: bool = False) -> Blob:
    options = [Blob(c, compress(data, c), len(data), shuffled) for c in codecs]
    return min(options, key=lambda b: len(b.stored))  # ties keep the earlier, cheaper-to-decode codec


class BlobArea:
    """The payload's blob area being written: `put` appends a blob and returns its manifest descriptor."""

    def __init__(self):
        self.parts: list[bytes] = []
        self.size = 0

    def put(self, blob: Blob) -> dict:
        desc = {"codec": blob.codec, "offset": self.size, "length": len(blob.stored),
                "raw_length": blob.raw_length, "shuffled": blob.shuffled}
        self.parts.append(blob.stored)
        self.size += len(blob.stored)
        return desc


def read_blob(desc, area: memoryview, size: int) -> bytes:
    """A blob's bytes (`desc`: a manifest.BlobRef), decompressed and unshuffled (elements of `size` bytes);
    ValueError if it does not fit."""
    start, length = desc.offset, desc.length
    if start < 0 or length < 0 or start + length > len(area):
        raise ValueError("a blob lies outside the payload")
    data = decompress(bytes(area[start : start + length]), desc.codec, desc.raw_length)
    if desc.shuffled and len(data) % size:
        raise ValueError(f"shuffled blob of {len(data)} bytes is not a whole number of {size}-byte elements")
    return unshuffle(data, size) if desc.shuffled else data


def _encode(encoding, blobs, size, fill, codecs, codebook=b"") -> EncodedTensor:
    coded = {role: best_blob(shuffle(data, size) if s else data, codecs, s) for role, (data, s) in blobs.items()}
    return EncodedTensor(encoding, size, coded, fill if encoding == "bitmask" else b"",
                         codebook if encoding == "codebook" else b"")


def _codebook(elements: np.ndarray) -> tuple[bytes, np.ndarray]:
    """The distinct elements (sorted) and each element's index into them; (b"", None) unless 2..MAX_CODEBOOK."""
    size = elements.shape[1]
    if size not in (1, 2, 4, 8) or elements.shape[0] == 0:
        return b"", None
    as_int = elements.reshape(-1).view(f"<u{size}")
    if size == 1 and np.count_nonzero(np.bincount(as_int, minlength=256)) > MAX_CODEBOOK:
        return b"", None  # the common case, decided without sorting
    uniques, indices = np.unique(as_int, return_inverse=True)
    if not 2 <= uniques.size <= MAX_CODEBOOK:
        return b"", None
    return uniques.astype(f"<u{size}").tobytes(), indices.reshape(-1)


def _most_common(elements: np.ndarray) -> bytes:
    """The most frequent element (0 for symmetric int8, the zero point for uint8): the bitmask's background."""
    size = elements.shape[1]
    if size not in (1, 2, 4, 8) or elements.shape[0] == 0:
        return bytes(size)
    as_int = elements.reshape(-1).view(f"<u{size}")
    if size == 1:
        counts = np.bincount(as_int, minlength=256)
        return bytes([int(np.argmax(counts))])
    uniques, counts = np.unique(as_int, return_counts=True)
    return uniques[np.argmax(counts)].astype(f"<u{size}").tobytes()
