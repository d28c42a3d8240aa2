import struct

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from edgecompress.core.errors import UserError
from edgecompress.core.models import DigitsCNN
from edgecompress.delivery import pack, unpack, unpack_to
from edgecompress.delivery.packed import FORMAT_VERSION, MAGIC
from edgecompress.onnx import export_onnx
from edgecompress.runtime.sessions import make_session

SHAPE = (256, 256)


def sparse_array(dtype, sparsity=0.9, seed=0, background=0):
    """Normal weights with the lowest-magnitude `sparsity` fraction set to `background`."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=SHAPE)
    if np.issubdtype(dtype, np.integer):
        w = np.clip(np.round(w / np.abs(w).max() * 127), -127, 127)
    out = (w + background).astype(dtype)
    out[np.abs(w) < np.quantile(np.abs(w), sparsity)] = background
    return out


def save_model(path, initializers, nodes=(), inputs=(), outputs=None):
    """An ONNX file whose initializers are returned by Identity nodes (a valid model ORT can run)."""
    if outputs is None:
        nodes = [helper.make_node("Identity", [t.name], [f"{t.name}_out"]) for t in initializers]
        outputs = [helper.make_tensor_value_info(f"{t.name}_out", t.data_type, list(t.dims)) for t in initializers]
    graph = helper.make_graph(list(nodes), "g", list(inputs), outputs, initializer=list(initializers))
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]), str(path))
    return path


@pytest.fixture
def mixed_model(tmp_path):
    """y = (x @ dequant(int8 90%-sparse 256x256)) @ dense fp32 256x64 + bias kept in float_data."""
    w_q = numpy_helper.from_array(sparse_array(np.int8), "w_q")
    scale = numpy_helper.from_array(np.array(0.01, np.float32), "scale")
    dense = numpy_helper.from_array(np.random.default_rng(1).normal(size=(256, 64)).astype(np.float32), "dense")
    bias = helper.make_tensor("bias", TensorProto.FLOAT, [64], np.linspace(-1, 1, 64).tolist(), raw=False)
    nodes = [
        helper.make_node("DequantizeLinear", ["w_q", "scale"], ["w"]),
        helper.make_node("MatMul", ["x", "w"], ["h"]),
        helper.make_node("MatMul", ["h", "dense"], ["y0"]),
        helper.make_node("Add", ["y0", "bias"], ["y"]),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 256])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])
    return save_model(tmp_path / "mixed.onnx", [w_q, scale, dense, bias], nodes, [x], [y])


@pytest.fixture(scope="module")
def sparse_cnn_onnx(tmp_path_factory):
    """DigitsCNN with the 90% lowest-magnitude weights (global over weight tensors) set to zero, exported."""
    torch.manual_seed(0)
    model = DigitsCNN().eval()
    weights = [p for name, p in model.named_parameters() if name.endswith("weight")]
    with torch.no_grad():
        magnitudes = torch.cat([w.abs().flatten() for w in weights])
        threshold = magnitudes.kthvalue(int(0.9 * magnitudes.numel())).values
        for w in weights:
            w[w.abs() <= threshold] = 0
    return export_onnx(model, torch.zeros(1, 1, 8, 8), tmp_path_factory.mktemp("cnn") / "cnn.onnx")


def test_mixed_model_round_trips_bit_exactly(mixed_model, tmp_path):
    info = pack(mixed_model, tmp_path / "m.ecz")
    assert unpack(tmp_path / "m.ecz") == mixed_model.read_bytes()
    assert info.mode == "split" and info.fallback_reason is None
    assert {t.name: t.encoding for t in info.tensors} == {"w_q": "bitmask", "dense": "dense"}
    assert info.packed_bytes == (tmp_path / "m.ecz").stat().st_size
    assert info.onnx_bytes == mixed_model.stat().st_size


@pytest.mark.parametrize("dtype, background", [(np.int8, 0), (np.uint8, 128), (np.int32, 0), (np.float32, 0)])
def test_each_raw_data_type_round_trips_and_uses_the_bitmask(tmp_path, dtype, background):
    source = save_model(tmp_path / "t.onnx", [numpy_helper.from_array(sparse_array(dtype, background=background), "t")])
    info = pack(source, tmp_path / "t.ecz")
    assert unpack(tmp_path / "t.ecz") == source.read_bytes()
    assert [t.encoding for t in info.tensors] == ["bitmask"]  # uint8: the zero point 128 is the background


def test_negative_zero_and_nan_payloads_survive(tmp_path):
    values = sparse_array(np.float32)
    values[0, :8] = -0.0
    values.view(np.uint32)[1, :4] = 0x7FC00001  # a NaN with a payload
    source = save_model(tmp_path / "f.onnx", [numpy_helper.from_array(values, "f")])
    pack(source, tmp_path / "f.ecz")
    assert unpack(tmp_path / "f.ecz") == source.read_bytes()


def test_int8_tensor_at_90_percent_sparsity_packs_under_0_2_bytes_per_param(tmp_path):
    source = save_model(tmp_path / "q.onnx", [numpy_helper.from_array(sparse_array(np.int8), "q")])
    info = pack(source, tmp_path / "q.ecz")
    params = SHAPE[0] * SHAPE[1]
    assert info.tensors[0].bytes_per_param <= 0.16  # measured 0.145; FINDINGS sec. 3: entropy bound 0.14
    assert info.packed_bytes / params <= 0.2  # the whole file, header, graph and table included


def test_fp32_tensor_at_90_percent_sparsity_packs_under_0_45_bytes_per_param(tmp_path):
    source = save_model(tmp_path / "f.onnx", [numpy_helper.from_array(sparse_array(np.float32), "f")])
    info = pack(source, tmp_path / "f.ecz")
    assert info.packed_bytes / (SHAPE[0] * SHAPE[1]) <= 0.45  # measured 0.40: 10% of 4 bytes, plus the mask


def test_sparse_cnn_packs_9x_smaller_and_runs_identically(sparse_cnn_onnx, tmp_path):
    info = pack(sparse_cnn_onnx, tmp_path / "cnn.ecz")
    assert info.ratio >= 9  # measured 10.1x; the ONNX file is fp32 with zeros stored densely
    restored = unpack_to(tmp_path / "cnn.ecz", tmp_path / "restored.onnx")
    assert restored.read_bytes() == sparse_cnn_onnx.read_bytes()
    x = np.random.default_rng(0).normal(size=(16, 1, 8, 8)).astype(np.float32)
    expected = make_session(sparse_cnn_onnx).run(None, {"input": x})[0]
    assert np.array_equal(make_session(restored).run(None, {"input": x})[0], expected)


def test_file_not_written_by_protobuf_is_stored_whole_and_still_exact(mixed_model, tmp_path):
    model = onnx.load(str(mixed_model))
    version = model.ir_version
    model.ClearField("ir_version")
    # Protobuf merges concatenated messages: same model, but ir_version (field 1) now comes last
    odd = tmp_path / "odd.onnx"
    odd.write_bytes(model.SerializeToString() + onnx.ModelProto(ir_version=version).SerializeToString())
    info = pack(odd, tmp_path / "odd.ecz")
    assert info.mode == "whole" and "re-serializing" in info.fallback_reason
    assert unpack(tmp_path / "odd.ecz") == odd.read_bytes()


def corrupted(path, edit):
    data = bytearray(path.read_bytes())
    path.write_bytes(bytes(edit(data)))
    return path


def flip_middle(data):
    data[len(data) // 2] ^= 0xFF
    return data


@pytest.mark.parametrize("edit, message", [
    (flip_middle, "is corrupt: checksum mismatch"),
    (lambda d: d[: len(d) // 2], "is truncated"),
    (lambda d: d[:40], "is truncated"),
    (lambda d: d[:5], "is truncated"),
    (lambda d: d + b"\0", "is corrupt"),
])
def test_damaged_file_is_refused_naming_the_file(mixed_model, tmp_path, edit, message):
    packed = tmp_path / "m.ecz"
    pack(mixed_model, packed)
    corrupted(packed, edit)
    with pytest.raises(UserError, match=message) as caught:
        unpack_to(packed, tmp_path / "out.onnx")
    assert str(packed) in str(caught.value) and "\n" not in str(caught.value)
    assert not (tmp_path / "out.onnx").exists()


def test_every_single_byte_flip_is_refused(mixed_model, tmp_path):
    packed = tmp_path / "m.ecz"
    pack(mixed_model, packed)
    original = packed.read_bytes()
    for position in range(0, len(original), max(1, len(original) // 97)):
        corrupted(packed, lambda d: d[:position] + bytes([d[position] ^ 0x01]) + d[position + 1 :])
        with pytest.raises(UserError):
            unpack(packed)
        packed.write_bytes(original)


def test_non_packed_file_is_refused(mixed_model):
    with pytest.raises(UserError, match="is not an edgecompress packed file"):
        unpack(mixed_model)


def test_newer_format_version_is_refused(mixed_model, tmp_path):
    packed = tmp_path / "m.ecz"
    pack(mixed_model, packed)
    corrupted(packed, lambda d: d[:8] + struct.pack("<H", FORMAT_VERSION + 1) + d[10:])
    with pytest.raises(UserError, match=f"format version {FORMAT_VERSION + 1}.*upgrade edgecompress"):
        unpack(packed)


def test_packed_file_starts_with_magic_and_version(mixed_model, tmp_path):
    pack(mixed_model, tmp_path / "m.ecz")
    head = (tmp_path / "m.ecz").read_bytes()[:10]
    assert head == MAGIC + struct.pack("<H", FORMAT_VERSION)


def test_missing_files_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        unpack(tmp_path / "missing.ecz")
    with pytest.raises(UserError, match="not found"):
        pack(tmp_path / "missing.onnx", tmp_path / "m.ecz")


def test_non_onnx_input_is_refused(tmp_path):
    text = tmp_path / "notes.onnx"
    text.write_text("these are not the weights you are looking for\n")
    with pytest.raises(UserError, match="is not an ONNX model"):
        pack(text, tmp_path / "notes.ecz")
    assert not (tmp_path / "notes.ecz").exists()


def test_external_data_is_refused(tmp_path):
    model = onnx.load(str(save_model(tmp_path / "e.onnx", [numpy_helper.from_array(sparse_array(np.float32), "w")])))
    onnx.save_model(model, str(tmp_path / "ext.onnx"), save_as_external_data=True, size_threshold=0)
    with pytest.raises(UserError, match="external data file"):
        pack(tmp_path / "ext.onnx", tmp_path / "ext.ecz")


def test_packing_onto_the_source_is_refused(mixed_model):
    with pytest.raises(UserError, match="is the ONNX file itself"):
        pack(mixed_model, mixed_model)
