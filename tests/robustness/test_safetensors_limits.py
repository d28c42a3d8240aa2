"""A hostile .safetensors is refused with one line (exit 2) before its tensors are read: header length,
header contents (by the safetensors library), dtypes, tensor sizes, and the file's type and size."""

from __future__ import annotations

import json
import os
import struct

import pytest

from edgecompress.cli import main
from edgecompress.core.errors import UserError
from edgecompress.core.models import DigitsCNN, load_model
from edgecompress.core.models.checkpoint import save_model_file


def _write(path, header: dict, data: bytes = b"", length: int | None = None):
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text) if length is None else length) + text + data)
    return path


CASES = {
    "header_longer_than_the_file": (dict(header={}, length=10**15), "its header claims 1,000,000,000,000,000 bytes"),
    "offsets_past_the_end": (dict(header={"fc1.weight": {"dtype": "F32", "shape": [10**9], "data_offsets": [0, 4 * 10**9]}},
                                  data=bytes(16)), "not a valid safetensors file"),
    "shape_that_does_not_match_its_bytes": (dict(header={"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}}, data=bytes(8)),
                                            "invalid shape, data type, or offset"),
    "unknown_dtype": (dict(header={"w": {"dtype": "Q99", "shape": [4], "data_offsets": [0, 16]}}, data=bytes(16)),
                      "not a valid safetensors file"),
    "dtype_we_do_not_load": (dict(header={"w": {"dtype": "F4", "shape": [8], "data_offsets": [0, 4]}}, data=bytes(4)),
                             "has dtype F4, which edgecompress does not load"),
    "overflowing_shape": (dict(header={"w": {"dtype": "F32", "shape": [2**62, 2**62], "data_offsets": [0, 16]}}, data=bytes(16)),
                          "not a valid safetensors file"),
    "not_a_safetensors_file_at_all": (dict(header={}, length=3), "not a valid safetensors file"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_malformed_safetensors_file_is_one_line_on_every_path(case, tmp_path, capsys):
    fields, expected = CASES[case]
    path = _write(tmp_path / "model.safetensors", **fields)
    out = tmp_path / "out"
    for args in (["inspect", str(path)], ["inspect", "digits-cnn", "--weights", str(path)]):
        code = main([*args, "--out", str(out)])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and expected in err and "Traceback" not in err, (args, err)
    assert not out.exists()


LIMITS = {  # environment variable, a value the genuine file breaks, what the refusal says
    "header": ("EDGECOMPRESS_MAX_SAFETENSORS_HEADER_BYTES", "100", "header of .* is [0-9,]+ bytes, over the limit of 100 bytes"),
    "tensor": ("EDGECOMPRESS_MAX_TENSOR_BYTES", "4096", "tensor 'conv2.weight' of .* is 73,728 bytes, over the limit of 4,096 bytes"),
    "file": ("EDGECOMPRESS_MAX_MODEL_BYTES", "1000", "is [0-9,]+ bytes, over the limit of 1,000 bytes"),
}


@pytest.mark.parametrize("limit", sorted(LIMITS))
def test_each_limit_refuses_before_reading_and_names_its_variable(limit, tmp_path, monkeypatch):
    env, value, expected = LIMITS[limit]
    path = tmp_path / "w.safetensors"
    save_model_file(DigitsCNN(), path, arch="digits-cnn")
    monkeypatch.setenv(env, value)
    with pytest.raises(UserError, match=f"{expected} \\(raise it with {env}=N"):
        load_model(str(path))


def test_a_pytorch_weights_file_over_the_size_limit_is_refused_unread(tmp_path, monkeypatch):
    torch_file = tmp_path / "w.pt"
    torch_file.write_bytes(b"\x80" * 2000)
    monkeypatch.setenv("EDGECOMPRESS_MAX_MODEL_BYTES", "1000")
    with pytest.raises(UserError, match="EDGECOMPRESS_MAX_MODEL_BYTES"):
        load_model("digits-cnn", weights=str(torch_file))


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_a_fifo_or_device_as_weights_is_refused_without_blocking(suffix, tmp_path):
    fifo = tmp_path / f"w{suffix}"
    os.mkfifo(fifo)
    with pytest.raises(UserError, match="is not a regular file"):
        load_model("digits-cnn", weights=str(fifo))
