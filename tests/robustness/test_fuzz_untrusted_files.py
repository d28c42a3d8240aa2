"""Property tests: generated file headers (.ecz, safetensors, ONNX) and recipe texts are either loaded or
refused with a UserError (one line, exit 2 from the CLI): never another exception, never code from a file,
never a read outside the file's folder, never a write outside the output path.

Budgets are in fuzz_budget.py: CI runs ~1,000 cases here, `make fuzz` (nightly, and in `make bench`) many more.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import struct
import zlib
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from edgecompress.cli import main
from edgecompress.core.errors import UserError
from edgecompress.core.models import load_model
from edgecompress.delivery import pack, unpack
from edgecompress.inspect import layer_table
from edgecompress.orchestration.recipe import load_recipe
from edgecompress.untrusted.onnx_files import check_onnx_file
from tests.robustness import crafted_ecz
from tests.robustness.fuzz_budget import fuzz_settings, tree

pytestmark = pytest.mark.fuzz

# ---- .ecz ----------------------------------------------------------------------------------------------------

SIZES = st.one_of(st.integers(0, 70), st.integers(0, 1 << 20), st.sampled_from([2**31, 2**33, 2**63, 2**64 + 5, -1, -(2**40)]),
                  st.floats(allow_nan=True), st.text(max_size=3), st.none(), st.booleans())
HEX = st.one_of(st.binary(max_size=12).map(bytes.hex), st.sampled_from(["", "zz", "0", "00ff", "00" * 300]), st.text(max_size=6))
JSON = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=4)),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=8)


@st.composite
def blob_areas(draw):
    """A blob area of real and random streams, and descriptors that mostly point into it."""
    raw = draw(st.binary(max_size=300))
    parts = draw(st.lists(st.sampled_from([raw, zlib.compress(raw), bytes(raw[::-1]),
                                           lzma.compress(raw, format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2, "dict_size": 4096}])]),
                          min_size=1, max_size=3))
    area = b"".join(parts)
    starts = [sum(map(len, parts[:i])) for i in range(len(parts))]

    def blob():
        i = draw(st.integers(0, len(parts) - 1))
        honest = {"codec": draw(st.sampled_from(["none", "zlib", "lzma2"])), "offset": starts[i], "length": len(parts[i]),
                  "raw_length": draw(st.sampled_from([len(raw), len(parts[i])]) | SIZES), "shuffled": draw(st.booleans())}
        if draw(st.booleans()):
            honest[draw(st.sampled_from(list(honest)))] = draw(SIZES | st.sampled_from(["gzip", "none"]))
        return honest

    return area, blob


@st.composite
def manifests(draw):
    area, blob = draw(blob_areas())
    mode = draw(st.sampled_from(["split", "whole", "other"]))
    if mode == "whole":
        manifest = {"mode": "whole", "onnx_length": draw(SIZES), "onnx": blob()}
    elif mode == "split":
        tensors = [{"index": draw(SIZES), "raw_length": draw(SIZES), "element_size": draw(st.sampled_from([0, 1, 2, 3, 4, 8, 16]) | SIZES),
                    "encoding": draw(st.sampled_from(["dense", "bitmask", "codebook", "rle"])), "fill": draw(HEX), "codebook": draw(HEX),
                    "blobs": {role: blob() for role in draw(st.lists(st.sampled_from(["data", "mask", "values", "indices", "x"]), max_size=3))}}
                   for _ in range(draw(st.integers(0, 3)))]
        manifest = {"mode": "split", "onnx_length": draw(SIZES), "skeleton": blob(), "tensors": tensors}
    else:
        manifest = draw(JSON)
    listing = draw(st.sampled_from(["zlib", "raw", "garbage"]))
    encoded = json.dumps(manifest).encode()
    listing = {"zlib": zlib.compress(encoded), "raw": encoded, "garbage": draw(st.binary(max_size=40))}[listing]
    data = crafted_ecz.frame(listing, area, onnx_sha=draw(st.sampled_from([bytes(32), hashlib.sha256(area).digest()])),
                             version=draw(st.sampled_from([1, 2, 2, 0, 3, 65535])))
    return _damaged_header(draw, data)


def _real_packed_file() -> bytes:
    """A genuine split-mode file with a dense, a bitmask and a codebook tensor: the seed of `mutated_files`."""
    import tempfile

    rng = np.random.default_rng(0)
    weights = [numpy_helper.from_array(rng.standard_normal((16, 32)).astype(np.float32), "dense"),
               numpy_helper.from_array((rng.random((32, 64)) < 0.1) * rng.standard_normal((32, 64)).astype(np.float32), "sparse"),
               numpy_helper.from_array(rng.integers(-1, 2, (64, 64)).astype(np.int8), "ternary")]
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [helper.make_tensor_value_info("x", 1, [1])],
                              [helper.make_tensor_value_info("y", 1, [1])], weights)
    with tempfile.TemporaryDirectory() as folder:
        onnx.save_model(helper.make_model(graph), f"{folder}/m.onnx")
        info = pack(f"{folder}/m.onnx", f"{folder}/m.ecz")
        assert info.mode == "split" and {t.encoding for t in info.tensors} == {"dense", "bitmask", "codebook"}
        return Path(f"{folder}/m.ecz").read_bytes()


REAL = _real_packed_file()


@st.composite
def mutated_files(draw):
    """The genuine file with one manifest value replaced or removed, or one blob byte changed; checksums redone,
    so the reader's deeper checks (sizes, codecs, encodings, the tensor walk) are what must refuse it."""
    (listing_length,) = struct.unpack_from("<I", REAL, 82)
    manifest = json.loads(zlib.decompress(REAL[86 : 86 + listing_length]))
    area = bytearray(REAL[86 + listing_length :])
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.integers(0, 4)) == 0:
            at = draw(st.integers(0, len(area) - 1))
            area[at] ^= draw(st.integers(1, 255))
            continue
        _mutate_one_value(draw, manifest, SIZES | HEX | JSON | st.sampled_from(["dense", "bitmask", "codebook", "zlib", "lzma2", "none"]))
    original_sha = REAL[18:50]
    return _damaged_header(draw, crafted_ecz.frame(manifest, bytes(area), onnx_sha=original_sha))


def _mutate_one_value(draw, document, values) -> None:
    """Walk down a random path of a JSON document and replace (or now and then delete) the value there."""
    parent, key, node = None, None, document
    while isinstance(node, (dict, list)) and node and (parent is None or draw(st.booleans())):
        parent, key = node, draw(st.sampled_from(list(node) if isinstance(node, dict) else list(range(len(node)))))
        node = node[key]
    if parent is not None:
        if isinstance(parent, dict) and draw(st.integers(0, 5)) == 0:
            del parent[key]
        else:
            parent[key] = draw(values)


def _damaged_header(draw, data: bytes) -> bytes:
    """Sometimes truncate, extend, or change a header byte (the checksum then no longer matches)."""
    how = draw(st.sampled_from(["as is"] * 6 + ["truncate", "extend", "flip"]))
    if how == "truncate":
        return data[: draw(st.integers(0, len(data) - 1))]
    if how == "extend":
        return data + draw(st.binary(min_size=1, max_size=8))
    if how == "flip":
        at = draw(st.integers(0, 81))
        return data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1 :]
    return data


@fuzz_settings(300)
@given(data=manifests() | mutated_files())
def test_generated_packed_files_are_restored_or_refused(data, tmp_path):
    path = tmp_path / "fuzz.ecz"
    path.write_bytes(data)
    try:
        unpack(path)
    except UserError:
        pass


@fuzz_settings(60)
@given(data=manifests() | mutated_files())
def test_the_unpack_command_refuses_in_one_line_and_writes_nothing(data, tmp_path, capsys):
    """A refused file leaves nothing behind; a file that happens to be valid writes only --out."""
    path, out = tmp_path / "fuzz.ecz", tmp_path / "restored.onnx"
    path.write_bytes(data)
    if out.exists():
        out.unlink()
    before = tree(tmp_path)
    code = main(["unpack", str(path), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 0 or (code == 2 and err.startswith("error: ") and err.count("\n") == 1), (code, err)
    assert tree(tmp_path, skip=out) == before and out.exists() == (code == 0)


# ---- safetensors --------------------------------------------------------------------------------------------

DTYPES = st.sampled_from(["F32", "F16", "BF16", "I64", "I8", "U8", "BOOL", "F4", "F8_E4M3", "C64", "Q99", ""])
ARCHS = st.sampled_from(["digits-cnn", "digits-mlp", "evil.py:build", "evilmod:build", "os:system", "nope", ""])
NAMES = st.sampled_from(["conv1.weight", "conv1.bias", "fc1.weight", "fc2.bias", "edgecompress.mask:fc1", "x", ""])
BYTES_PER = {"F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I8": 1, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "C64": 8}
PAYLOAD = "import pathlib\npathlib.Path({marker!r}).write_text('ran')\nfrom torch import nn\ndef build():\n    return nn.Linear(4, 2)\n"


@st.composite
def safetensors_files(draw):
    header, offset = {}, 0
    for name in draw(st.lists(NAMES, max_size=3, unique=True)):
        dtype = draw(DTYPES)
        shape = draw(st.lists(st.integers(0, 6) | st.sampled_from([-1, 2**40, 2**63]), max_size=3))
        size = int(np.prod(shape, dtype=object)) * BYTES_PER.get(dtype, 1) if shape else BYTES_PER.get(dtype, 1)
        end = offset + (size if draw(st.booleans()) else draw(st.integers(0, 64)))
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, end]}
        offset = end
    metadata = {}
    if draw(st.booleans()):
        metadata["edgecompress.arch"] = draw(ARCHS)
    if draw(st.booleans()):
        sizes = draw(st.one_of(JSON, st.dictionaries(st.sampled_from(["fc1", "conv1", "x", "fc1.weight"]), st.dictionaries(
            st.sampled_from(["in_features", "out_features", "groups", "forward", "__class__"]), st.integers(-3, 2**40) | JSON, max_size=2), max_size=2)))
        metadata["edgecompress.layer_sizes"] = json.dumps(sizes) if draw(st.booleans()) else draw(st.text(max_size=10))
    if draw(st.booleans()):  # the original positions of a shortened ModuleList's entries
        kept = draw(st.one_of(JSON, st.dictionaries(st.sampled_from(["", "fc1", "features", "layers"]),
                                                    st.lists(st.integers(-1, 2**40) | JSON, max_size=3), max_size=2)))
        metadata["edgecompress.kept_entries"] = json.dumps(kept) if draw(st.booleans()) else draw(st.text(max_size=10))
    if metadata or draw(st.booleans()):
        header["__metadata__"] = metadata if draw(st.booleans()) else draw(JSON)
    text = json.dumps(header).encode()
    length = len(text) if draw(st.integers(0, 4)) else draw(st.integers(0, 2**64 - 1))
    data = bytes(max(0, min(offset, 1 << 16))) if draw(st.booleans()) else draw(st.binary(max_size=64))
    return struct.pack("<Q", length) + text + data


def _real_safetensors() -> bytes:
    """A genuine pruned digits CNN saved by edgecompress (layer sizes and masks in it): the seed of mutations."""
    import tempfile

    from edgecompress.core.models import DigitsCNN
    from edgecompress.core.models.checkpoint import save_model_file
    from tests.prune.test_channel import prune_channels

    model = prune_channels(DigitsCNN(), torch.zeros(1, 1, 8, 8), 0.5)
    with tempfile.TemporaryDirectory() as folder:
        return save_model_file(model, Path(folder, "m.safetensors"), arch="digits-cnn").read_bytes()


REAL_SAFETENSORS = _real_safetensors()


@st.composite
def mutated_safetensors(draw):
    """The genuine file with one header or metadata value replaced; the header length redone to match."""
    (length,) = struct.unpack_from("<Q", REAL_SAFETENSORS)
    header = json.loads(REAL_SAFETENSORS[8 : 8 + length])
    metadata = header["__metadata__"]
    if draw(st.booleans()):
        sizes = json.loads(metadata["edgecompress.layer_sizes"])
        _mutate_one_value(draw, sizes, st.integers(-2, 2**33) | JSON | st.lists(st.integers(-1, 9), max_size=3))
        metadata["edgecompress.layer_sizes"] = json.dumps(sizes)
    else:
        _mutate_one_value(draw, header, DTYPES | ARCHS | JSON | st.lists(st.integers(-1, 2**40), max_size=3))
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + REAL_SAFETENSORS[8 + length :]


@pytest.fixture
def evil_folder(tmp_path, monkeypatch):
    """The working folder holds evil.py and evilmod.py, which write a marker when imported."""
    folder, marker = tmp_path / "cwd", tmp_path / "pwned"
    folder.mkdir()
    for name in ("evil.py", "evilmod.py"):
        (folder / name).write_text(PAYLOAD.format(marker=str(marker)))
    monkeypatch.chdir(folder)
    monkeypatch.syspath_prepend(str(folder))
    return folder, marker


@fuzz_settings(200)
@given(data=safetensors_files() | mutated_safetensors())
def test_generated_safetensors_files_load_or_are_refused_and_never_run_code(data, evil_folder):
    folder, marker = evil_folder
    path = folder / "model.safetensors"
    path.write_bytes(data)
    before = tree(folder.parent)
    for spec, weights in ((str(path), None), ("digits-cnn", str(path))):
        try:
            loaded = load_model(spec, weights=weights)
        except UserError:
            continue
        layer_table(loaded.module, loaded.default_input_shape)  # what inspect does next: a loaded model runs
    assert not marker.exists(), "a file's metadata ran code"
    assert tree(folder.parent) == before


# ---- ONNX ---------------------------------------------------------------------------------------------------

LOCATIONS = st.sampled_from(["w.bin", "sub/w.bin", "../w.bin", "../../secret.bin", "SECRET", "sub/../../secret.bin", "link_out",
                             "link_in", "", "w.bin\x00x", "C:\\secret.bin", "\\\\server\\share", ".", "sub", "a" * 300, "missing.bin"])


@st.composite
def onnx_models(draw):
    tensors = []
    for i in range(draw(st.integers(0, 3))):
        tensor = TensorProto(name=f"t{i}", data_type=draw(st.sampled_from([1, 2, 7, 10, 16, 0, 8, 99])),
                             dims=draw(st.lists(st.integers(0, 8) | st.sampled_from([-1, 2**40]), max_size=3)))
        kind = draw(st.sampled_from(["raw", "external", "external", "floats"]))
        if kind == "raw":
            tensor.raw_data = draw(st.binary(max_size=64))
        elif kind == "floats":
            tensor.float_data.extend(draw(st.lists(st.floats(width=32), max_size=4)))
        else:
            tensor.data_location = TensorProto.EXTERNAL
            for key in draw(st.lists(st.sampled_from(["location", "offset", "length", "checksum", "bogus"]), max_size=4)):
                entry = tensor.external_data.add()
                entry.key = key
                entry.value = draw(LOCATIONS) if key == "location" else draw(st.sampled_from(["0", "4", "16", "-1", "2000", "x", str(2**64)]))
        tensors.append(tensor)
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [helper.make_tensor_value_info("x", 1, [1])],
                              [helper.make_tensor_value_info("y", 1, [1])], tensors[: draw(st.integers(0, len(tensors)))])
    if tensors and draw(st.booleans()):  # a tensor inside a subgraph of an If node
        sub = helper.make_graph([], "sub", [], [], tensors[-1:])
        graph.node.append(helper.make_node("If", ["c"], ["z"], then_branch=sub, else_branch=sub))
    model = helper.make_model(graph)
    data = model.SerializeToString()
    return data if draw(st.integers(0, 5)) else draw(st.binary(max_size=200)) + data[: draw(st.integers(0, len(data)))]


@pytest.fixture
def onnx_folder(tmp_path):
    """model/ with w.bin, sub/w.bin and a link in; secret.bin and a link to it outside."""
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    for path in (folder / "w.bin", folder / "sub" / "w.bin", tmp_path / "secret.bin"):
        path.write_bytes(np.arange(256, dtype=np.uint8).tobytes() * 8)
    (folder / "link_in").symlink_to(folder / "w.bin")
    (folder / "link_out").symlink_to(tmp_path / "secret.bin")
    return folder


@fuzz_settings(200)
@given(data=onnx_models())
def test_generated_onnx_files_are_checked_and_external_data_stays_inside(data, onnx_folder):
    path = onnx_folder / "model.onnx"
    path.write_bytes(data.replace(b"SECRET", str(onnx_folder.parent / "secret.bin").encode()))
    before = tree(onnx_folder.parent)
    try:
        model = check_onnx_file(path)
    except UserError:
        model = None
    if model is not None:
        from onnx.external_data_helper import ExternalDataInfo, uses_external_data

        from edgecompress.onnx.tensors import walk_tensors

        for tensor in walk_tensors(model, everything=True):
            if uses_external_data(tensor):
                where = (onnx_folder / ExternalDataInfo(tensor).location).resolve()
                assert where.is_relative_to(onnx_folder.resolve()), where
    out = onnx_folder.parent / "packed.ecz"
    try:
        pack(path, out)
        out.unlink()
    except UserError:
        assert not out.exists()
    assert tree(onnx_folder.parent) == before


# ---- recipes as text ----------------------------------------------------------------------------------------

FRAGMENTS = st.sampled_from([
    "model: digits-cnn", "model: *a", "model: &a [1, 2]", "model: x\nmodel: y", "stages: *s", "s: &s [{stage: quantize}]",
    "stages:\n  - stage: quantize", "stages:\n  - {<<: *m, amount: 0.5}", "m: &m {stage: prune}", "seed: 99999999999999999999",
    "task: os:system", "a: !!python/object/apply:os.system ['touch pwned']", "b: !!binary aGVsbG8=", "k: {a: 1, a: 2}",
    "deep: " + "[" * 70 + "]" * 70, "l: &l [*l]", "x: &x [a, a, a, a, a, a, a, a, a, a]\ny: &y [*x, *x, *x, *x, *x, *x, *x, *x, *x, *x]",
    "z: [*y, *y, *y, *y, *y, *y, *y, *y, *y, *y]\nw: [*z, *z, *z, *z, *z, *z, *z, *z, *z, *z]", "%YAML 1.1\n---", "--- |\n  text",
    "? [complex, key]\n: value", "\t", "\x00", "'unclosed", "\ufeffmodel: digits-cnn", "&anchor", "*undefined",
])


@fuzz_settings(150)
@given(lines=st.lists(FRAGMENTS | st.text(max_size=12), max_size=8))
def test_generated_recipe_texts_load_or_are_refused_in_one_short_line(lines, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "recipe.yaml"
    path.write_bytes("\n".join(lines).encode("utf-8", "replace") + b"\n")
    try:
        load_recipe(path)
    except UserError as exc:
        assert len(str(exc)) < 4_000, len(str(exc))
    assert not (tmp_path / "pwned").exists()
