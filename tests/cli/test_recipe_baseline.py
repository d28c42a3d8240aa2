"""sweep, sensitivity and fit take a recipe's model, task, seed and execution settings (--recipe)."""

import json
import sys

import pytest
import yaml

from edgecompress.cli import main
from edgecompress.core.models import DigitsMLP

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


USER_MODELS = '''
from torch import nn


def mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def head_only():
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
'''


@pytest.mark.parametrize("model, small_dense, lines", [
    ("models.py:mlp", True, []),
    ("models.py:head_only", None, ["no smaller dense models: cannot thin Sequential uniformly: no Linear, conv or recurrent layer can lose a channel"]),
    ("digits-mlp", DigitsMLP, []),
])
def test_sweep_compares_a_recipes_own_model_with_its_thinned_architecture(tmp_path, monkeypatch, capsys, model, small_dense, lines):
    """A user's model gets the smaller dense models (its own architecture, thinned) and the channel-pruned
    architectures trained from scratch; a built-in one keeps its width factory; a model that cannot be thinned
    is said so before training, and the sweep goes on without them (issue 18)."""
    import edgecompress.orchestration.curves as curves
    import edgecompress.orchestration.recipe.run as recipe_run
    from edgecompress.core.results import SweepPoint, SweepResult

    (tmp_path / "models.py").write_text(USER_MODELS)
    calls = []

    def recorded_sweep(model, task, out, *args, **kwargs):
        calls.append(kwargs)
        point = SweepPoint("baseline", 0.0, False, 90.0, 100, 100, 1000, 500)
        return SweepResult(point, [], {}, 0.5, [], {}, [{
            "level": 0.5, "method": "channel", "params": 50, "finetuned_score": 88.0, "from_scratch_score": 85.5, "winner": "fine-tuned",
        }])

    monkeypatch.setattr(curves, "sweep", recorded_sweep)
    monkeypatch.setattr(recipe_run, "train_baseline", lambda model, *args: model)  # what is trained does not matter here
    recipe = _recipe(tmp_path, model=model, train={"epochs": 1})
    assert main(["sweep", "--recipe", recipe, "--levels", "0.5", "--methods", "channel", "--out", str(tmp_path / "s")]) == 0
    (kwargs,) = calls
    assert kwargs["small_dense"] is small_dense and kwargs["from_scratch"] is (small_dense is True)
    out = capsys.readouterr().out
    assert [line for line in lines if line not in out.replace("\n", " ")] == []
    assert "channel 0.5 (50 params): fine-tuned 88.00 vs trained from scratch 85.50: fine-tuned wins" in out
