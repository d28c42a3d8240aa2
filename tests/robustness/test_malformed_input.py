"""Property tests: malformed recipes and argument lists never produce a traceback, nor write anything
outside the output they were given.

Every case ends with exit code 2 (or 0 for --help) and, on error, exactly one line on stderr. A generated
recipe or argument list that happens to be valid is stopped by --out naming a file, which every command
checks before any training, export or model loading, so nothing long ever runs. Each case runs in an empty
working folder; the folder, the inputs and everything else under the test's temporary folder must be as
they were, but for the output path. Budgets: fuzz_budget.py (CI runs 900 cases here; `make fuzz` more).
"""

from __future__ import annotations

import yaml
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgecompress.cli import main

from tests.robustness.fuzz_budget import fuzz_settings, tree

EXAMPLES = __import__("pathlib").Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """An empty working folder (with a link to examples/, which some tokens name), made the current one."""
    folder = tmp_path / "cwd"
    folder.mkdir()
    (folder / "examples").symlink_to(EXAMPLES)
    monkeypatch.chdir(folder)
    return folder


def _main_writing_only(args: list[str], roots, out) -> int:
    """`main(args)`, asserting that nothing under `roots` changed except `out` (and what lies below it)."""
    before = tree(*roots, skip=out)
    code = main(args)
    assert tree(*roots, skip=out) == before, f"{args} wrote outside {out}"
    return code

FIELDS = ["stage", "pattern", "criterion", "amount", "scope", "schedule", "steps", "epochs", "lr", "block", "n", "m",
          "layers", "keep", "per_layer", "mode", "calibration", "distill", "masks", "score_fn", "bogus"]
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 2000), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["prune", "finetune", "quantize", "channel", "nm", "block", "l1", "wanda", "global", "gradual",
                     "static", "dynamic", "digits-cnn", "digits", "os:path", "x:y", "", "*", "fc1"]),
    st.text(max_size=12),
)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=6)
STAGE = st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=6)
RECIPE = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "model": st.one_of(st.sampled_from(["digits-cnn", "digits-mlp", "nope", "os:getcwd", "m.pt"]), VALUES),
            "task": st.one_of(st.sampled_from(["digits", "nowhere"]), VALUES),
            "seed": VALUES,
            "train": st.one_of(VALUES, st.fixed_dictionaries({}, optional={"epochs": VALUES, "lr": VALUES})),
            "stages": st.one_of(VALUES, st.lists(st.one_of(STAGE, VALUES), max_size=4)),
            "extra": VALUES,
        },
    ),
    VALUES,
)


def _check_one_line_error(code: int, err: str) -> None:
    assert "Traceback" not in err
    assert code in (0, 2), (code, err)
    if code == 2:
        assert err.startswith("error: ") and err.count("\n") == 1, err


@pytest.mark.fuzz
@fuzz_settings(300)
@given(recipe=RECIPE)
def test_malformed_recipes_give_one_line_and_exit_2(recipe, tmp_path, sandbox, capsys):
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, allow_unicode=True))
    not_a_dir = tmp_path / "taken"
    not_a_dir.write_text("x")
    code = _main_writing_only(["run", str(path), "--out", str(not_a_dir)], [tmp_path], not_a_dir)
    _check_one_line_error(code, capsys.readouterr().err)
    assert code == 2


TOKENS = ["demo", "inspect", "run", "dtypes", "--seed", "--out", "--input-shape", "--target-size", "--weights",
          "--trust-pickle", "--resume", "--value", "--int-range", "digits-cnn", "nope", "1,1,8,8", "0", "-1", "abc",
          "50KB", "x:y", "--bogus", "", "examples/digits.yaml", "nan", "1e309"]


@pytest.mark.fuzz
@fuzz_settings(100)
@given(args=st.lists(st.one_of(st.sampled_from(TOKENS), st.text(max_size=8)), max_size=6))
def test_malformed_argument_lists_give_one_line_and_exit_2(args, tmp_path, sandbox, capsys):
    not_a_dir = tmp_path / "taken"
    not_a_dir.write_text("x")
    if "dtypes" in args or "--help" in args:
        args = [a for a in args if a not in ("dtypes", "--help")]  # dtypes and help succeed by design
    code = _main_writing_only([*args, "--out", str(not_a_dir)], [tmp_path], not_a_dir)
    _check_one_line_error(code, capsys.readouterr().err)


def test_negative_seed_is_a_usage_error_before_any_work(tmp_path, capsys):
    for args in (["demo", "--seed", "-1"], ["run", "recipe.yaml", "--seed", "-3"]):
        out = tmp_path / "out"
        code = main([*args, "--out", str(out)])
        err = capsys.readouterr().err
        assert code == 2 and "--seed" in err and err.count("\n") == 1
        assert not out.exists()


# Tokens that mean something to each command: its options, values of the right and wrong kind, and files
# that exist but are broken (garbage ONNX, truncated and tampered .ecz, an artifact folder with bad JSON).
COMMON = ["--out", "--seed", "--help", "--bogus", "", "-1", "0", "3", "nan", "inf", "1e309", "abc", "x:y", "/", "--debug"]
COMMAND_TOKENS = {
    "inspect": ["digits-cnn", "nope", "os:getcwd", "--input-shape", "1,1,8,8", "1x0", "--weights", "--trust-pickle",
                "--target-size", "50KB", "-5KB", "{garbage_onnx}", "{missing}"],
    "run": ["examples/digits.yaml", "{bad_yaml}", "{missing}", "--trust-pickle", "--resume"],
    "sweep": ["--levels", "0.5,0.9", "1.5", "0.5,,x", "--methods", "channel", "lowrank,bogus", "--finetune-epochs",
              "--tolerance", "--jobs", "--executor", "local", "ray", "dask", "--ray-address", "--no-dense-baseline"],
    "fit": ["--max-size", "20KB", "0KB", "--max-latency", "0.5x", "-3ms", "--max-drop", "--size-of", "packed", "onnx", "zip"],
    "pack": ["{garbage_onnx}", "{missing}", "{empty}", "{folder}", "{tampered_ecz}"],
    "unpack": ["{truncated_ecz}", "{tampered_ecz}", "{garbage_onnx}", "{missing}", "{empty}", "{folder}"],
    "encoder": ["int8", "int4", "structured", "int2", "--model-dir", "{folder}", "{missing}", "--distill-seconds",
                "--ffn-fraction", "--head-fraction", "1.0", "0.5", "--quantize", "none", "fp8", "--keep-float"],
    "embed": ["{folder}", "{bad_artifact}", "{missing}", "hello world", "--file", "{empty}", "{garbage_onnx}", "x.npy"],
}


@pytest.fixture(scope="module")
def broken_files(tmp_path_factory):
    """Files that exist but must be refused: each `{name}` token above is replaced by one of these paths."""
    from edgecompress.delivery import pack

    root = tmp_path_factory.mktemp("broken")
    (root / "garbage.onnx").write_bytes(b"\x08\x07not a protobuf" * 8)
    (root / "empty.txt").write_bytes(b"")
    (root / "folder").mkdir()
    (root / "bad.yaml").write_text("model: [unclosed\n")
    (root / "artifact").mkdir()
    (root / "artifact" / "encoder.json").write_text("{not json")
    ecz = root / "model.ecz"
    pack(_tiny_onnx(root / "tiny.onnx"), ecz)
    data = ecz.read_bytes()
    (root / "truncated.ecz").write_bytes(data[: len(data) // 2])
    (root / "tampered.ecz").write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    return {
        "garbage_onnx": root / "garbage.onnx", "missing": root / "missing.onnx", "empty": root / "empty.txt",
        "folder": root / "folder", "bad_yaml": root / "bad.yaml", "bad_artifact": root / "artifact",
        "truncated_ecz": root / "truncated.ecz", "tampered_ecz": root / "tampered.ecz",
    }


def _tiny_onnx(path):
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.arange(4096, dtype=np.float32).reshape(64, 64), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])], [weight],
    )
    onnx.save_model(helper.make_model(graph), str(path))
    return path


def _command_args(command):
    tokens = st.sampled_from(COMMAND_TOKENS[command] + COMMON) | st.text(max_size=6)
    return st.lists(tokens, max_size=7).map(lambda rest: [command, *rest])


# Commands cheap enough to run for real when the fuzzer happens to build valid arguments: for them --out is
# sometimes a usable path, so the checks behind it (model files, weights, archives, artifacts) are reached.
CHEAP_OUT = {"inspect": "inspect-out", "pack": "out.ecz", "unpack": "out.onnx", "embed": "vectors.npy"}


@pytest.mark.fuzz
@fuzz_settings(500)
@given(args=st.sampled_from(sorted(COMMAND_TOKENS)).flatmap(_command_args), usable_out=st.booleans())
def test_malformed_arguments_of_every_command_give_one_line_and_exit_2(args, usable_out, broken_files, tmp_path, sandbox, capsys):
    not_a_dir = tmp_path / "taken"
    not_a_dir.write_text("x")
    args = [a for a in args if a != "--help"]  # help succeeds by design
    args = [str(broken_files[a[1:-1]]) if a.startswith("{") and a[1:-1] in broken_files else a for a in args]
    usable_out = usable_out and args[0] in CHEAP_OUT
    out = tmp_path / CHEAP_OUT[args[0]] if usable_out else not_a_dir
    code = _main_writing_only([*args, "--out", str(out)], [tmp_path, broken_files["folder"].parent], out)
    _check_one_line_error(code, capsys.readouterr().err)
    assert code == 2 or (usable_out and code == 0), (args, code)
    assert not_a_dir.read_text() == "x"  # nothing was written over the file given as --out


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
