"""sweep, sensitivity and fit take a recipe's model, task, seed and execution settings (--recipe)."""

import json
import sys

import yaml

from edgecompress.cli import main

MLP_RECIPE = {
    "model": "digits-mlp", "task": "digits", "train": {"epochs": 2}, "seed": 3,
    "stages": [{"stage": "quantize", "mode": "dynamic"}],
    "execution": {"executor": "local", "jobs": 1},
}


def _recipe(tmp_path, **changes):
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump({**MLP_RECIPE, **changes}))
    return str(path)


def test_sensitivity_of_a_recipes_model_uses_its_layers_and_seed(tmp_path, capsys):
    out = tmp_path / "s"
    assert main(["sensitivity", "--recipe", _recipe(tmp_path), "--levels", "0.9", "--out", str(out)]) == 0
    document = json.loads((out / "sensitivity.json").read_text())
    assert set(document["per_layer"]) == {"fc1", "fc2", "fc3"}  # the MLP's layers, not the demo CNN's
    assert "per-layer amounts" in capsys.readouterr().out


def test_recipe_execution_ray_without_ray_fails_before_training_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    recipe = _recipe(tmp_path, execution={"executor": "ray"})
    assert main(["sweep", "--recipe", recipe, "--out", str(tmp_path / "w")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: --executor ray: Ray is not installed; install it with: pip install 'edgecompress[ray]'"]
    assert not (tmp_path / "w").exists()


def test_command_line_executor_wins_over_the_recipes(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    recipe = _recipe(tmp_path, execution={"executor": "ray"})
    out = tmp_path / "s"
    assert main(["sensitivity", "--recipe", recipe, "--executor", "local", "--levels", "0.9", "--out", str(out)]) == 0
    assert (out / "sensitivity.json").is_file()


def test_bad_execution_section_is_refused_with_its_field(tmp_path, capsys):
    recipe = _recipe(tmp_path, execution={"executor": "local", "ray_address": "auto"})
    assert main(["fit", "--max-size", "10KB", "--recipe", recipe, "--out", str(tmp_path / "f")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "execution" in err and "ray_address is only used with executor ray" in err
