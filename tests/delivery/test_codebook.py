"""Format version 2: tensors with few distinct elements are stored as a codebook plus packed indices."""

import hashlib
import re
import struct
from pathlib import Path

import numpy as np
import pytest
from onnx import numpy_helper

from edgecompress.delivery import pack, unpack
from edgecompress.delivery.encoding import decode_tensor, pack_indices, per_byte, unpack_indices
from edgecompress.delivery.packed import FORMAT_VERSION, walk_tensors
from tests.delivery.test_packed import SHAPE, save_model

FORMAT_DOC = Path(__file__).resolve().parents[2] / "docs" / "format.md"


def ternary_int8(seed=0):
    """What ternary QAT then static int8 leaves: each weight -127, 0 or 127 (about 30% zeros)."""
    w = np.random.default_rng(seed).normal(size=SHAPE)
    return (np.sign(w) * (np.abs(w) > 0.4) * 127).astype(np.int8)


@pytest.mark.parametrize("distinct, expected", [(2, 8), (3, 5), (4, 4), (5, 3), (6, 3), (7, 2), (16, 2), (17, 1), (256, 1)])
def test_a_byte_holds_as_many_indices_as_fit(distinct, expected):
    assert per_byte(distinct) == expected


@pytest.mark.parametrize("distinct", [2, 3, 5, 7, 15, 16])
@pytest.mark.parametrize("count", [1, 4, 5, 6, 1001])
def test_indices_round_trip_in_ceil_count_over_g_bytes(distinct, count):
    indices = np.random.default_rng(count).integers(0, distinct, count)
    packed = pack_indices(indices, distinct)
    assert len(packed) == -(-count // per_byte(distinct))
    assert np.array_equal(unpack_indices(packed, distinct, count), indices)


def test_first_index_is_the_most_significant_digit():
    assert pack_indices(np.array([2, 0, 0, 0, 1, 1]), 3) == bytes([2 * 81 + 1, 1 * 81])


def test_ternary_int8_tensor_packs_at_1_6_bits_per_weight_and_round_trips(tmp_path):
    source = save_model(tmp_path / "t.onnx", [numpy_helper.from_array(ternary_int8(), "t")])
    info = pack(source, tmp_path / "t.ecz")
    assert unpack(tmp_path / "t.ecz") == source.read_bytes()
    (tensor,) = info.tensors
    assert tensor.encoding == "codebook"
    assert tensor.packed_bytes <= -(-tensor.elements // 5)  # 1.6 bits (LZMA may shave a little); bitmask: 1.8-1.9


def test_float_tensor_with_four_values_uses_a_codebook_of_floats(tmp_path):
    levels = np.array([-0.75, -0.25, 0.25, 0.75], np.float32)
    values = levels[np.random.default_rng(1).integers(0, 4, SHAPE)]
    source = save_model(tmp_path / "f.onnx", [numpy_helper.from_array(values, "f")])
    info = pack(source, tmp_path / "f.ecz")
    assert unpack(tmp_path / "f.ecz") == source.read_bytes()
    assert info.tensors[0].encoding == "codebook"
    assert info.tensors[0].bytes_per_param <= 0.26  # 4 per byte: 2 bits, against 32 in ONNX


def test_indices_beyond_the_codebook_are_refused():
    with pytest.raises(ValueError, match="exceeds 3\\^5"):
        decode_tensor("codebook", 1, 5, b"", {"indices": bytes([243])}, codebook=bytes([0x81, 0, 0x7F]))
    with pytest.raises(ValueError, match="expected 1"):
        decode_tensor("codebook", 1, 5, b"", {"indices": bytes(2)}, codebook=bytes([0x81, 0, 0x7F]))


def test_version_1_files_still_unpack(tmp_path):
    """A version-1 file is a version-2 file without codebooks: rewrite the version and its checksum."""
    rng = np.random.default_rng(2)
    source = save_model(tmp_path / "v1.onnx", [numpy_helper.from_array(rng.normal(size=SHAPE).astype(np.float32), "w")])
    data = bytearray((pack(source, tmp_path / "v1.ecz").path).read_bytes())
    assert FORMAT_VERSION == 2 and b'"codebook"' not in data
    data[8:10] = struct.pack("<H", 1)
    data[50:82] = hashlib.sha256(bytes(data[:50] + data[82:])).digest()
    (tmp_path / "v1.ecz").write_bytes(bytes(data))
    assert unpack(tmp_path / "v1.ecz") == source.read_bytes()


def test_the_minimal_reader_in_docs_format_md_decodes_a_codebook_file(tmp_path):
    source = save_model(tmp_path / "t.onnx", [numpy_helper.from_array(ternary_int8(), "t"),
                                             numpy_helper.from_array(np.linspace(-1, 1, 4096, dtype=np.float32), "d")])
    info = pack(source, tmp_path / "t.ecz")
    assert {t.encoding for t in info.tensors} == {"codebook", "dense"}
    reader = re.search(r"## 6\. A minimal reader.*?```python\n(.*?)```", FORMAT_DOC.read_text(), re.S).group(1)
    scope = {"walk": walk_tensors}
    exec(compile(reader, "docs/format.md", "exec"), scope)
    assert scope["read_ecz"]((tmp_path / "t.ecz").read_bytes()) == source.read_bytes()
