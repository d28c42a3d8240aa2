"""Issue #5: bad quantization input from the command line is one line, exit 2, and nothing is written."""

import textwrap

import pytest

from edgecompress.cli import main

BASE = """
model: digits-cnn
task: digits
stages:
"""


@pytest.mark.parametrize(
    "stages, message",
    [
        ("- {stage: qat, bits: 9}", "stage 1 (qat): bits must be from 2 to 8 or 'ternary', got 9"),
        ("- {stage: qat, bits: ternery}", "stage 1 (qat): bits.literal['ternary']: Input should be 'ternary' (given 'ternery')"),
        ("- {stage: quantize, mode: int3}", "stage 1 (quantize): mode:"),
        ("- {stage: quantize, calibration: kl}", "stage 1 (quantize): calibration:"),
        ("- {stage: quantize, keep_float: [decoder]}", "quantize.keep_float: pattern 'decoder' matches no layer"),
    ],
    ids=["bits-9", "bits-word", "mode", "calibration", "keep-float"],
)
def test_bad_quantization_settings_exit_2_with_one_line_and_write_nothing(stages, message, tmp_path, capsys):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(textwrap.dedent(BASE) + "  " + stages + "\n")
    out = tmp_path / "out"
    code = main(["run", str(recipe), "--out", str(out)])
    err = capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir()), sorted(p.name for p in out.iterdir())
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err
