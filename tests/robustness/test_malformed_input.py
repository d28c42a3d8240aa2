"""Property tests: malformed recipes and argument lists never produce a traceback, nor write anything
outside the output they were given.

The strategies and the verdict are `benchmarks/fuzz.py`'s: every case is refused (exit code 2, one line,
nothing written, within 2 s of CPU), accepted (exit code 0), or valid (it reached its work, where the harness
stops it). CI runs 900 cases here; `make bench` runs over 10,000 (BENCHMARKS.md, "Fuzzing the command line").
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from benchmarks import fuzz
from edgecompress.cli import main

BUDGET = {"recipes": 300, "arguments": 600}  # CI; `make bench` runs benchmarks.fuzz.BUDGET (over 10,000)


@pytest.fixture(scope="module")
def fuzz_inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    inputs = fuzz.make_inputs(root / "inputs")
    (root / "inputs" / "scratch").mkdir()
    return inputs, root / "inputs" / "scratch"


def _judged(outcome):
    assert outcome.verdict != "problem", outcome.detail


@settings(max_examples=BUDGET["recipes"], deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(recipe=fuzz.RECIPE)
def test_malformed_recipes_are_refused_in_one_line_or_valid(recipe, fuzz_inputs):
    _judged(fuzz.run_recipe_case(recipe, *fuzz_inputs))


@settings(max_examples=BUDGET["arguments"], deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(args=fuzz.command_args())
def test_malformed_arguments_of_every_command_are_refused_in_one_line_or_valid(args, fuzz_inputs):
    _judged(fuzz.run_case(args, *fuzz_inputs))


def test_negative_seed_is_a_usage_error_before_any_work(tmp_path, capsys):
    for args in (["demo", "--seed", "-1"], ["run", "recipe.yaml", "--seed", "-3"]):
        out = tmp_path / "out"
        code = main([*args, "--out", str(out)])
        err = capsys.readouterr().err
        assert code == 2 and "--seed" in err and err.count("\n") == 1
        assert not out.exists()


@pytest.mark.parametrize(
    "settings, expected",
    [
        ("{not json", "is not valid JSON"),
        ('{"model": "model.onnx"}', "lacks a model file name or a positive max_length"),
        ('{"model": "model.onnx", "max_length": 0}', "lacks a model file name or a positive max_length"),
        ('{"model": "gone.onnx", "max_length": 8}', "has no 'gone.onnx'"),
        ('{"model": "model.onnx", "max_length": 8}', "cannot load the tokenizer"),
    ],
)
def test_a_broken_encoder_artifact_is_one_line_and_exit_2(settings, expected, tmp_path, capsys):
    folder = tmp_path / "artifact"
    folder.mkdir()
    (folder / "encoder.json").write_text(settings)
    (folder / "model.onnx").write_bytes(b"not onnx")
    code = main(["embed", str(folder), "a sentence"])
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert code == 2 and len(err) == 1 and expected in err[0], err
