"""Bad input: one clear line on stderr, exit code 2, no traceback, nothing written."""

from __future__ import annotations

import subprocess
import sys

import pytest

from edgecompress.cli import main


def _run(args, capsys):
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    "args, message",
    [
        (["inspect", "no-such-model"], "unknown model 'no-such-model'"),
        (["inspect", "no_such_module_xyz:make"], "cannot import module 'no_such_module_xyz'"),
        (["inspect", "os:no_such_function"], "has no attribute 'no_such_function'"),
        (["inspect", "digits-cnn", "--input-shape", "1,3,8,8"], "input shape: 1x3x8x8 does not fit DigitsCNN"),
        (["inspect", "digits-cnn", "--input-shape", "one,two"], "--input-shape: cannot parse"),
        (["inspect", "digits-cnn", "--target-size", "fifty"], "--target-size: cannot parse 'fifty'"),
        (["inspect", "digits-cnn", "--target-size", "20"], "--target-size: '20' has no unit, so it could mean bytes or kilobytes; give a unit: 20KB"),
        (["inspect", "digits-cnn", "--no-such-flag"], "No such option"),
    ],
)
def test_bad_inspect_input_is_one_line_exit_2_and_writes_nothing(args, message, capsys, tmp_path):
    out = tmp_path / "out"
    code, stdout, stderr = _run([*args, "--out", str(out)], capsys)
    assert code == 2
    assert stderr.startswith("error: ") and message in stderr
    assert stderr.count("\n") == 1 and "Traceback" not in stderr
    assert not out.exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["fit", "--max-size", "tiny", "--max-drop", "1"], "--max-size: cannot parse 'tiny'"),
        (["fit", "--max-size", "10000", "--max-drop", "1"], "--max-size: '10000' has no unit, so it could mean bytes or kilobytes; give a unit: 10000KB"),
        (["fit", "--max-size", "10KB", "--max-drop", "-1"], "--max-drop: must be >= 0"),
        (["fit", "--max-size", "10KB", "--max-drop", "1", "--size-of", "zip"], "--size-of: must be packed or onnx"),
        (["fit", "--max-drop", "1"], "Missing option '--max-size'"),
    ],
)
def test_bad_fit_targets_are_one_line_exit_2(args, message, capsys, tmp_path):
    out = tmp_path / "out"
    code, _, stderr = _run([*args, "--out", str(out)], capsys)
    assert code == 2 and message in stderr and stderr.count("\n") == 1
    assert not out.exists()


@pytest.mark.parametrize("command", [["inspect", "digits-cnn"], ["demo"]])
def test_output_directory_that_is_a_file_is_refused(command, capsys, tmp_path):
    a_file = tmp_path / "taken"
    a_file.write_text("keep me")
    code, _, stderr = _run([*command, "--out", str(a_file)], capsys)
    assert code == 2
    assert "is a file, not a directory" in stderr and stderr.count("\n") == 1
    assert a_file.read_text() == "keep me"


def test_real_entry_point_prints_no_traceback(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "edgecompress.cli", "inspect", "no-such-model", "--out", str(tmp_path / "o")],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error: model: unknown model") and "Traceback" not in done.stderr
    assert done.stdout == ""


def test_help_of_every_command_exits_0(capsys):
    for args in (["--help"], ["inspect", "--help"], ["demo", "--help"]):
        assert main(args) == 0
    text = capsys.readouterr().out
    assert "inspect" in text and "--target-size" in text and "--out" in text
