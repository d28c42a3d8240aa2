import os

import pytest

from edgecompress.storage.files import atomic_path, atomic_write_text


def test_failed_write_leaves_neither_target_nor_temporary_file(tmp_path):
    target = tmp_path / "model.onnx"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed mid-write")
    assert list(tmp_path.iterdir()) == []


def test_failed_rewrite_keeps_the_previous_complete_file(tmp_path):
    target = atomic_write_text(tmp_path / "metrics.json", "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("new but incomplete")
            raise RuntimeError
    assert target.read_text() == "old"


def test_written_files_get_normal_permissions(tmp_path):
    target = atomic_write_text(tmp_path / "a.txt", "x")
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask
