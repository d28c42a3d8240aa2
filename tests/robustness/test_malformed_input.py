"""Property tests: malformed recipes and argument lists never produce a traceback.

Every case ends with exit code 2 (or 0 for --help) and, on error, exactly one line on stderr. A generated
recipe that happens to be valid is stopped by --out naming a file, so nothing long ever runs.
"""

from __future__ import annotations

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgecompress.cli import main

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


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(recipe=RECIPE)
def test_malformed_recipes_give_one_line_and_exit_2(recipe, tmp_path, capsys):
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, allow_unicode=True))
    not_a_dir = tmp_path / "taken"
    not_a_dir.write_text("x")
    code = main(["run", str(path), "--out", str(not_a_dir)])
    _check_one_line_error(code, capsys.readouterr().err)
    assert code == 2


TOKENS = ["demo", "inspect", "run", "dtypes", "--seed", "--out", "--input-shape", "--target-size", "--weights",
          "--trust-pickle", "--resume", "--value", "--int-range", "digits-cnn", "nope", "1,1,8,8", "0", "-1", "abc",
          "50KB", "x:y", "--bogus", "", "examples/digits.yaml", "nan", "1e309"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(args=st.lists(st.one_of(st.sampled_from(TOKENS), st.text(max_size=8)), max_size=6))
def test_malformed_argument_lists_give_one_line_and_exit_2(args, tmp_path, capsys):
    not_a_dir = tmp_path / "taken"
    not_a_dir.write_text("x")
    if "dtypes" in args or "--help" in args:
        args = [a for a in args if a not in ("dtypes", "--help")]  # dtypes and help succeed by design
    code = main([*args, "--out", str(not_a_dir)])
    _check_one_line_error(code, capsys.readouterr().err)


def test_negative_seed_is_a_usage_error_before_any_work(tmp_path, capsys):
    for args in (["demo", "--seed", "-1"], ["run", "recipe.yaml", "--seed", "-3"]):
        out = tmp_path / "out"
        code = main([*args, "--out", str(out)])
        err = capsys.readouterr().err
        assert code == 2 and "--seed" in err and err.count("\n") == 1
        assert not out.exists()
