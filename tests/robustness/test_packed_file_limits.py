"""A hostile `.ecz` is refused with one line (exit 2) before it can take memory, and nothing is written.

The three files of issue 21 (a codebook claiming 8 GiB, an LZMA stream expanding to 1 GiB, a manifest claiming
2 GiB) are real: their streams do expand that far. Each is unpacked by the CLI in a child process whose peak
RSS is measured (importing edgecompress alone takes ~0.4 GB); the old reader took 23.9, 2.5 and 4.5 GB.
"""

from __future__ import annotations

import os
import stat

import pytest

from edgecompress.cli import main
from edgecompress.core.errors import UserError
from edgecompress.delivery import unpack
from tests.robustness import crafted_ecz
from tests.robustness.measured_cli import run_measured

GB = 10**9


@pytest.fixture(scope="module")
def streams():
    """Real streams: ~1 GiB of zeros as raw LZMA2 (~156 KB), 2 GiB of zeros as zlib (~2 MB)."""
    lzma_stream, lzma_length = crafted_ecz.lzma_zeros(511)
    return {"lzma_1gib": lzma_stream, "lzma_length": lzma_length, "zlib_2gib": crafted_ecz.zlib_zeros(2 * crafted_ecz.GIB)}


CRAFTED = {  # name: (the file, what its one-line refusal says)
    "codebook_claiming_8_gib": (lambda s: crafted_ecz.codebook_claiming_8_gib(s["lzma_1gib"], s["lzma_length"]),
                                "over the limit of 2,147,483,648 bytes"),
    "lzma_stream_expanding_to_1_gib": (lambda s: crafted_ecz.lzma_stream_expanding_to_1_gib(s["lzma_1gib"], s["lzma_length"]),
                                       "EDGECOMPRESS_MAX_UNPACK_RATIO"),
    "manifest_claiming_2_gib": (lambda s: crafted_ecz.manifest_claiming_2_gib(s["zlib_2gib"]), "EDGECOMPRESS_MAX_UNPACK_RATIO"),
}


def test_crafted_packed_files_are_refused_in_bounded_memory(streams, tmp_path):
    names = sorted(CRAFTED)
    for name in names:
        (tmp_path / f"{name}.ecz").write_bytes(CRAFTED[name][0](streams))
    runs = run_measured(*(["unpack", tmp_path / f"{name}.ecz", "--out", tmp_path / f"{name}.onnx"] for name in names))
    for name, run in zip(names, runs):
        expected = CRAFTED[name][1]
        assert run.returncode == 2 and len(run.error_lines()) == 1 and expected in run.error_lines()[0], (name, run.stderr)
        assert "Traceback" not in run.stderr
        assert run.peak_rss_bytes < 1 * GB, f"{name}: peak RSS {run.peak_rss_bytes / 1e6:.0f} MB"
        print(f"{name}: {(tmp_path / f'{name}.ecz').stat().st_size:,} bytes, refused at peak RSS {run.peak_rss_bytes / 1e6:.0f} MB")
        assert not (tmp_path / f"{name}.onnx").exists()


def _refusal(data: bytes, tmp_path, capsys) -> str:
    packed, out = tmp_path / "hostile.ecz", tmp_path / "restored.onnx"
    packed.write_bytes(data)
    code = main(["unpack", str(packed), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert not out.exists()
    return err


def test_an_lzma_stream_longer_than_it_declares_stops_at_the_declared_length(streams, tmp_path, capsys):
    err = _refusal(crafted_ecz.lzma_stream_expanding_to_1_gib(streams["lzma_1gib"], declared=4096), tmp_path, capsys)
    assert "lzma2 data does not decode to 4096 bytes" in err


def test_a_manifest_that_inflates_to_2_gib_is_refused_at_16_mib(streams, tmp_path, capsys):
    err = _refusal(crafted_ecz.manifest_inflating_to_2_gib(streams["zlib_2gib"]), tmp_path, capsys)
    assert "the manifest is 16,777,217 bytes, over the limit of 16,777,216 bytes" in err and "EDGECOMPRESS_MAX_ECZ_MANIFEST_BYTES" in err


def test_a_deeply_nested_manifest_is_an_input_error(tmp_path, capsys):
    assert "is corrupt: manifest JSON: Invalid JSON: recursion limit exceeded" in _refusal(crafted_ecz.deeply_nested_manifest(), tmp_path, capsys)


def test_damaged_lzma_data_is_an_input_error_not_a_crash(tmp_path, capsys):
    assert "is corrupt" in _refusal(crafted_ecz.damaged_lzma(), tmp_path, capsys)


def test_a_codebook_larger_than_the_format_allows_is_refused_before_decoding(tmp_path, capsys):
    tensor = {"index": 0, "raw_length": 1024, "element_size": 1, "encoding": "codebook", "codebook": "ab" * 257,
              "blobs": {"indices": crafted_ecz.blob("none", 0, 1024, 1024)}}
    manifest = {"mode": "split", "onnx_length": 2048, "tensors": [tensor], "skeleton": crafted_ecz.blob("none", 0, 2, 2)}
    err = _refusal(crafted_ecz.frame(manifest, bytes(1024)), tmp_path, capsys)
    assert "a codebook of 257 bytes is not 2-256 elements of 1 bytes" in err


def test_a_blob_claiming_more_than_its_tensor_is_refused_before_decoding(tmp_path, capsys):
    tensor = {"index": 0, "raw_length": 16, "element_size": 1, "encoding": "dense",
              "blobs": {"data": crafted_ecz.blob("zlib", 0, 8, 10**12)}}
    manifest = {"mode": "split", "onnx_length": 64, "tensors": [tensor], "skeleton": crafted_ecz.blob("none", 0, 2, 2)}
    assert "blob 'data' declares 1,000,000,000,000 bytes" in _refusal(crafted_ecz.frame(manifest, bytes(8)), tmp_path, capsys)


def test_the_ratio_limit_is_raised_with_its_environment_variable(streams, tmp_path, monkeypatch):
    """Past the limit the file is decoded (and then refused by its checksum: the zeros are not the ONNX file)."""
    packed = tmp_path / "big.ecz"
    packed.write_bytes(crafted_ecz.lzma_stream_expanding_to_1_gib(*crafted_ecz.lzma_zeros(40)))  # ~86 MB from 12 KB
    with pytest.raises(UserError, match="EDGECOMPRESS_MAX_UNPACK_RATIO"):
        unpack(packed)
    monkeypatch.setenv("EDGECOMPRESS_MAX_UNPACK_RATIO", "100000")
    with pytest.raises(UserError, match="checksum mismatch of the restored ONNX bytes"):
        unpack(packed)


@pytest.mark.parametrize("command", ["pack", "unpack"])
def test_dev_zero_is_refused_before_reading_it(command, tmp_path, capsys):
    out = tmp_path / "out.file"
    assert main([command, "/dev/zero", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "/dev/zero is not a regular file" in err and err.count("\n") == 1
    assert not out.exists()


def test_unpacking_a_fifo_does_not_hang(tmp_path, capsys):
    """Opening a FIFO for reading blocks until a writer comes; it is refused before it is opened."""
    fifo = tmp_path / "model.ecz"
    os.mkfifo(fifo)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert main(["unpack", str(fifo), "--out", str(tmp_path / "out.onnx")]) == 2
    assert "is not a regular file" in capsys.readouterr().err


def test_a_packed_file_over_the_size_limit_is_refused_unread(tmp_path, monkeypatch, capsys):
    packed = tmp_path / "model.ecz"
    packed.write_bytes(crafted_ecz.damaged_lzma())
    monkeypatch.setenv("EDGECOMPRESS_MAX_PACKED_BYTES", "100")
    err = _refusal(packed.read_bytes(), tmp_path, capsys)
    assert "over the limit of 100 bytes (raise it with EDGECOMPRESS_MAX_PACKED_BYTES=N" in err
