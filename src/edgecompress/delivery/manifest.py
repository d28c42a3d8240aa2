"""The manifest of a packed file, read as untrusted input: a bounded inflate, a schema, and every size it
declares checked against the file before a single blob is decompressed.

A hostile `.ecz` is small and claims a lot (a codebook tensor of 8 GB, a 2 GB ONNX file, a manifest that
inflates to gigabytes). Each claim is compared here with what the format allows and with the decoding budget
(`budget_for`), so memory stays proportional to what the file can honestly hold.
"""

from __future__ import annotations

import zlib
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from edgecompress.core.errors import UserError
from edgecompress.delivery.encoding import per_byte
from edgecompress.untrusted.limits import MAX_ECZ_MANIFEST_BYTES, MAX_UNPACK_RATIO, MAX_UNPACKED_BYTES, UNPACK_RATIO_FREE_BYTES

_IGNORE_UNKNOWN = ConfigDict(extra="ignore", frozen=True)  # docs/format.md: readers ignore keys they do not know
Size = Annotated[int, Field(ge=0, strict=True)]
MAX_CODEBOOK_ENTRIES = 256  # the format's own bound: one index per byte at most
ROLES = {"dense": {"data"}, "bitmask": {"mask", "values"}, "codebook": {"indices"}}


class BlobRef(BaseModel):
    """Where one stored byte string lies in the blob area and what it decompresses to."""

    model_config = _IGNORE_UNKNOWN
    codec: Literal["none", "zlib", "lzma2"]
    offset: Size
    length: Size
    raw_length: Size
    shuffled: bool

    @model_validator(mode="after")
    def _stored_as_is(self):
        if self.codec == "none" and self.length != self.raw_length:
            raise ValueError(f"an uncompressed blob of {self.length} bytes claims {self.raw_length}")
        return self


class TensorEntry(BaseModel):
    model_config = _IGNORE_UNKNOWN
    index: Size
    raw_length: Size
    element_size: Literal[1, 2, 4, 8]
    encoding: Literal["dense", "bitmask", "codebook"]
    fill: str = Field("", max_length=2 * 8, pattern="^[0-9a-fA-F]*$")
    codebook: str = Field("", max_length=2 * 8 * MAX_CODEBOOK_ENTRIES, pattern="^[0-9a-fA-F]*$")
    blobs: dict[str, BlobRef]

    @model_validator(mode="after")
    def _blobs_fit_the_tensor(self):
        """Each blob's decompressed length follows from the tensor's length: check it before decompressing."""
        k, n = self.element_size, self.raw_length // self.element_size
        if self.raw_length % k:
            raise ValueError(f"element size {k} does not divide {self.raw_length} bytes")
        if set(self.blobs) != ROLES[self.encoding]:
            raise ValueError(f"a {self.encoding} tensor has blobs {sorted(self.blobs)}, not {sorted(ROLES[self.encoding])}")
        expected = {"data": self.raw_length, "mask": -(-n // 8)}
        if self.encoding == "codebook":
            distinct = len(self.codebook) // (2 * k)
            if len(self.codebook) != 2 * k * distinct or not 2 <= distinct <= MAX_CODEBOOK_ENTRIES:
                raise ValueError(f"a codebook of {len(self.codebook) // 2} bytes is not 2-256 elements of {k} bytes")
            expected["indices"] = -(-n // per_byte(distinct))
        if self.encoding == "bitmask" and len(self.fill) != 2 * k:
            raise ValueError(f"the fill value has {len(self.fill) // 2} bytes, not {k}")
        for role, blob in self.blobs.items():
            declared = blob.raw_length
            if declared != expected.get(role, declared) or (role == "values" and (declared > self.raw_length or declared % k)):
                raise ValueError(f"blob {role!r} declares {declared:,} bytes; a tensor of {self.raw_length:,} bytes allows "
                                 f"{expected.get(role, f'at most {self.raw_length:,}')}")
            if blob.shuffled and declared % k:
                raise ValueError(f"shuffled blob {role!r} of {declared} bytes is not whole {k}-byte elements")
        return self


class SplitManifest(BaseModel):
    model_config = _IGNORE_UNKNOWN
    mode: Literal["split"]
    onnx_length: Size
    skeleton: BlobRef
    tensors: list[TensorEntry]

    @model_validator(mode="after")
    def _parts_fit_the_file(self):
        inside = self.skeleton.raw_length + sum(t.raw_length for t in self.tensors)
        if inside > self.onnx_length:  # the restored file is the skeleton plus each raw_data field with its tag
            raise ValueError(f"its skeleton and tensors hold {inside:,} bytes, more than the {self.onnx_length:,}-byte ONNX file")
        return self

    def blobs(self) -> list[BlobRef]:
        return [self.skeleton, *(b for t in self.tensors for b in t.blobs.values())]


class WholeManifest(BaseModel):
    model_config = _IGNORE_UNKNOWN
    mode: Literal["whole"]
    onnx_length: Size
    onnx: BlobRef

    @model_validator(mode="after")
    def _one_blob_is_the_file(self):
        if self.onnx.raw_length != self.onnx_length:
            raise ValueError(f"the ONNX blob declares {self.onnx.raw_length:,} bytes, the file {self.onnx_length:,}")
        return self

    def blobs(self) -> list[BlobRef]:
        return [self.onnx]


Manifest = Annotated[Union[SplitManifest, WholeManifest], Field(discriminator="mode")]
_MANIFEST = TypeAdapter(Manifest)


def budget_for(packed_bytes: int) -> int:
    """The most a packed file of this size may restore to: the ratio limit above a free allowance, capped."""
    return min(MAX_UNPACKED_BYTES.value(), max(UNPACK_RATIO_FREE_BYTES, MAX_UNPACK_RATIO.value() * packed_bytes))


def read_manifest(listing: bytes | memoryview, area_length: int, packed_bytes: int | None, where: str):
    """The validated manifest; `packed_bytes` (the file's size) sets the budget, None means our own output."""
    limit = MAX_ECZ_MANIFEST_BYTES.value()
    inflater = zlib.decompressobj()
    try:
        text = inflater.decompress(bytes(listing), limit + 1)  # never inflate more than the limit
    except zlib.error as exc:
        raise UserError(f"{where} is corrupt: its manifest does not inflate ({exc})") from None
    MAX_ECZ_MANIFEST_BYTES.check(len(text), f"{where}: the manifest")
    try:
        manifest = _MANIFEST.validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"][:6])
        raise UserError(f"{where} is corrupt: manifest {field or 'JSON'}: {first['msg'][:200]}") from None
    for blob in manifest.blobs():
        if blob.offset + blob.length > area_length:
            raise UserError(f"{where} is corrupt: a blob lies outside the payload")
    if packed_bytes is not None:
        _check_budget(manifest, packed_bytes, where)
    return manifest


def _check_budget(manifest, packed_bytes: int, where: str) -> None:
    claimed = manifest.onnx_length
    MAX_UNPACKED_BYTES.check(claimed, f"{where}: the ONNX file it declares")
    if claimed > budget_for(packed_bytes):
        raise UserError(
            f"{where} declares an ONNX file of {claimed:,} bytes, {claimed / max(1, packed_bytes):,.0f}x its own "
            f"{packed_bytes:,} bytes; above {UNPACK_RATIO_FREE_BYTES // 2**20} MiB the limit is "
            f"{MAX_UNPACK_RATIO.value()}x (raise it with {MAX_UNPACK_RATIO.env}=N if you trust the file)"
        )
