"""A hostile recipe is refused with one short line (exit 2): alias bombs, deep nesting, duplicate keys, huge
files and values; an error never quotes more than a bounded piece of it."""

from __future__ import annotations

import tracemalloc

import pytest

from edgecompress.cli import main
from edgecompress.core.errors import UserError
from edgecompress.orchestration.recipe import load_recipe


def billion_laughs(width: int = 9, levels: int = 9) -> str:
    """~340 bytes of YAML whose aliases expand to 9^9 (387 million) strings, 10^9 values with the lists."""
    names = "abcdefghijklmnop"[:levels]
    lines = ["a: &a [" + ",".join(['"lol"'] * width) + "]"]
    for previous, name in zip(names, names[1:]):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * width) + "]")
    return "\n".join(lines + [f"model: *{names[-1]}", f"stages: *{names[-1]}"]) + "\n"


def _refused(text: str, tmp_path, capsys, command=("run",)) -> str:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(text)
    out = tmp_path / "out"
    args = [*command, str(recipe)] if command == ("run",) else [*command, "--recipe", str(recipe)]
    code = main([*args, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert not out.exists()
    return err


@pytest.mark.parametrize("command", [("run",), ("sweep",), ("sensitivity",), ("fit", "--max-size", "20KB")])
def test_the_billion_laughs_recipe_is_refused_in_small_memory(command, tmp_path, capsys):
    text = billion_laughs()
    assert len(text) < 400
    tracemalloc.start()
    try:
        err = _refused(text, tmp_path, capsys, command)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "expands to more than 100,000 values through aliases" in err and "EDGECOMPRESS_MAX_RECIPE_VALUES" in err
    assert peak < 20 * 2**20, f"parsing took {peak / 2**20:.0f} MiB"


def test_the_hundred_thousand_value_version_gets_a_short_line(tmp_path, capsys, monkeypatch):
    """10 x 10 x 10 x 10 x 10 laughs: refused by the alias limit; with the limit raised, validation fails and
    the line quotes a few items of the value, not all 100,000 (it printed a 580 KB line before)."""
    text = billion_laughs(width=10, levels=5)
    assert "EDGECOMPRESS_MAX_RECIPE_VALUES" in _refused(text, tmp_path, capsys)
    monkeypatch.setenv("EDGECOMPRESS_MAX_RECIPE_VALUES", "1000000")
    err = _refused(text, tmp_path, capsys)
    assert len(err) < 1_100 and "model: Input should be a valid string (given [[[...], [...], [...]," in err, err


def test_a_recipe_nested_5000_deep_is_refused(tmp_path, capsys):
    err = _refused("model: " + "[" * 5000 + "]" * 5000 + "\n", tmp_path, capsys)
    assert "nests deeper than 64 levels" in err and "EDGECOMPRESS_MAX_RECIPE_DEPTH" in err


def test_deep_nesting_through_aliases_is_refused(tmp_path, capsys):
    lines = ["a0: &a0 [[[[[[[[[[1]]]]]]]]]]"] + [f"a{i}: &a{i} [[[[[[[[[[*a{i - 1}]]]]]]]]]]" for i in range(1, 8)]
    assert "nests deeper than 64 levels through aliases" in _refused("\n".join(lines) + "\nmodel: *a7\n", tmp_path, capsys)


def test_an_alias_to_its_own_ancestor_is_refused(tmp_path, capsys):
    assert "recursive value" in _refused("model: &m [*m]\n", tmp_path, capsys)


def test_a_key_given_twice_is_refused(tmp_path, capsys):
    err = _refused("model: digits-cnn\nmodel: mypkg.evil:build\nstages:\n  - stage: quantize\n", tmp_path, capsys)
    assert "found the key 'model' twice" in err and "line 2" in err


def test_a_merge_key_may_still_be_overridden(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("base: &base {stage: prune, amount: 0.5}\nmodel: digits-cnn\nstages:\n  - {<<: *base, amount: 0.6}\n")
    with pytest.raises(UserError, match="base: unknown field"):  # the merge is fine; `base` is not a recipe field
        load_recipe(recipe)


def test_errors_quote_a_bounded_piece_of_huge_values(tmp_path, capsys):
    """Huge values in wrong places: the line names ten problems, counts the rest, and stays short."""
    values = ", ".join(str(i) for i in range(10_000))
    stages = "\n".join(f"  - {{stage: prune, amount: {1 + i}}}" for i in range(1_000))
    err = _refused(f"model: [{values}]\nseed: '{'9' * 100_000}'\nstages:\n{stages}\n", tmp_path, capsys)
    assert len(err) < 2_000 and "and 992 more" in err and "(given [0, 1, 2, 3, 4, 5, ...])" in err, err


def test_a_huge_integer_is_an_input_error(tmp_path, capsys):
    assert "is not valid YAML" in _refused(f"model: digits-cnn\nseed: {'9' * 100_000}\n", tmp_path, capsys)


def test_a_recipe_file_over_the_size_limit_is_refused_unread(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("EDGECOMPRESS_MAX_RECIPE_BYTES", "64")
    err = _refused("model: digits-cnn\nstages:\n  - stage: quantize\n" + "# padding\n" * 10, tmp_path, capsys)
    assert "over the limit of 64 bytes (raise it with EDGECOMPRESS_MAX_RECIPE_BYTES" in err


def test_dev_zero_as_a_recipe_is_refused_before_reading(tmp_path, capsys):
    assert main(["run", "/dev/zero", "--out", str(tmp_path / "out")]) == 2
    assert "/dev/zero is not a regular file" in capsys.readouterr().err


def test_a_bad_limit_setting_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("EDGECOMPRESS_MAX_RECIPE_BYTES", "lots")
    assert "EDGECOMPRESS_MAX_RECIPE_BYTES: 'lots' is not a positive integer" in _refused("model: x\n", tmp_path, capsys)
