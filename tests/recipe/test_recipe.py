import textwrap
from pathlib import Path

import pytest
import yaml

from edgecompress.cli import main
from edgecompress.core.errors import UserError
from edgecompress.orchestration.demo import demo_recipe
from edgecompress.orchestration.recipe import load_recipe, parse_recipe

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_example_digits_yaml_is_exactly_the_demo():
    assert load_recipe(EXAMPLES / "digits.yaml") == demo_recipe()


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_recipe_is_valid(path):
    assert load_recipe(path).stages


def test_yaml_and_python_are_one_schema():
    recipe = demo_recipe()
    assert parse_recipe(yaml.safe_load(yaml.safe_dump(recipe.model_dump(mode="json")))) == recipe


def _write(tmp_path, text):
    path = tmp_path / "recipe.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_five_errors_are_reported_together_with_stage_and_field(tmp_path):
    path = _write(
        tmp_path,
        """
        model: digits-cnn
        colour: blue
        stages:
          - stage: prune
            amount: 1.5
          - stage: finetune
            epochs: many
          - stage: sharpen
          - stage: quantize
            calibration: guess
        """,
    )
    with pytest.raises(UserError) as info:
        load_recipe(path)
    message = str(info.value)
    assert message.startswith("recipe: 5 problem(s)")
    assert "colour: unknown field" in message
    assert "stage 1 (prune): amount: Input should be less than 1 (given 1.5)" in message
    assert "stage 2 (finetune): epochs:" in message and "'many'" in message
    assert "stage 3 (sharpen)" in message and "unknown stage 'sharpen'" in message
    assert "stage 4 (quantize): calibration:" in message and "'guess'" in message


def test_cli_run_with_bad_recipe_is_one_line_exit_2_nothing_written(tmp_path, capsys):
    path = _write(tmp_path, "model: digits-cnn\nstages:\n  - stage: prune\n    amount: 2\n  - stage: nope\n")
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "2 problem(s)" in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize(
    "text, message",
    [
        ("model: no-such-model\nstages:\n  - stage: quantize\n", "model: unknown model 'no-such-model'"),
        ("model: digits-cnn\ntask: nowhere\nstages:\n  - stage: quantize\n", "task: unknown task 'nowhere'"),
        ("model: digits-cnn\nweights: missing.pt\nstages:\n  - stage: quantize\n", "weights: 'missing.pt' not found: looked for "),
        ("model: digits-cnn\nstages: []\n", "stages: List should have at least 1 item"),
        ("model: [unclosed\n", "is not valid YAML at line"),
        ("- just\n- a list\n", "must be a mapping"),
        ("model: digits-cnn\nstages:\n  - stage: quantize\n  - stage: finetune\n", "cannot follow stage 1 (quantize)"),
    ],
)
def test_each_kind_of_bad_recipe_is_a_clear_line(tmp_path, capsys, text, message):
    path = _write(tmp_path, text)
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_missing_recipe_file(tmp_path, capsys):
    assert main(["run", str(tmp_path / "none.yaml")]) == 2
    assert "recipe: file" in capsys.readouterr().err
