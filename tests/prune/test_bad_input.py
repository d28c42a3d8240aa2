"""Bad pruning settings: one clear line each, exit 2 from the CLI, and refused before the model is touched."""

from __future__ import annotations

import pytest
import torch
import yaml
from safetensors.torch import save_file

from edgecompress.cli import main
from edgecompress.core.errors import UserError
from edgecompress.core.models import DigitsCNN
from edgecompress.orchestration.pipeline.stages import Finetune, Prune
from edgecompress.techniques.prune.checks import check_prune, check_prune_stages


@pytest.mark.parametrize(
    "settings, has_data, message",
    [
        ({"pattern": "block", "block": (8, 8)}, True, r"^prune.pattern: 8x8 blocks do not divide layer conv1's 32x9 weight matrix"),
        ({"pattern": "nm", "layers": ("conv1",)}, True, r"^prune.pattern: groups of 4 \(N:M\) do not divide layer conv1's 9 input columns"),
        ({"pattern": "unstructured", "layers": ("decoder.*",)}, True, r"^prune.layers: pattern 'decoder.\*' matches no"),
        ({"pattern": "unstructured", "criterion": "wanda"}, False, r"^prune.criterion: wanda needs data"),
        ({"pattern": "channel", "criterion": "taylor"}, False, r"^prune.criterion: taylor needs data"),
    ],
)
def test_check_prune_refuses_in_one_line_and_leaves_the_model_alone(settings, has_data, message):
    model = DigitsCNN()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(UserError, match=message) as info:
        check_prune(model, Prune(**settings), has_data=has_data)
    assert "\n" not in str(info.value)
    after = model.state_dict()
    assert set(after) == set(before) and all(torch.equal(after[k], before[k]) for k in before)


def test_recipe_check_names_every_bad_stage_and_stops_where_shapes_change():
    stages = [
        Prune(pattern="block", block=(8, 8)),
        Finetune(epochs=1),
        Prune(pattern="unstructured", layers=("decoder.*",)),
        Prune(pattern="channel", amount=0.5),
        Prune(pattern="block", block=(8, 8)),  # shapes changed before it: checked when it runs
    ]
    with pytest.raises(UserError) as info:
        check_prune_stages(DigitsCNN(), stages, has_data=True)
    message = str(info.value)
    assert message.startswith("recipe: stage 1 (prune): prune.pattern: 8x8") and "; stage 3 (prune): prune.layers:" in message
    assert "stage 5" not in message and "\n" not in message
    check_prune_stages(DigitsCNN(), [Prune(pattern="unstructured", amount=0.5)], has_data=False)  # fine: no error


@pytest.mark.parametrize(
    "stage, message",
    [
        ({"pattern": "unstructured", "amount": 1.0}, "amount: Input should be less than 1"),
        ({"pattern": "unstructured", "amount": -0.2}, "amount: Input should be greater than or equal to 0"),
        ({"pattern": "nm", "n": 4, "m": 4}, "n must be smaller than m"),
        ({"pattern": "block", "block": [7, 7]}, "prune.pattern: 7x7"),
        ({"pattern": "unstructured", "layers": ["decoder.*"]}, "prune.layers:"),
    ],
)
def test_cli_refuses_bad_settings_with_exit_2_one_line_and_no_output(stage, message, tmp_path, capsys):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"model": "digits-cnn", "task": "digits", "stages": [{"stage": "prune", **stage}]}))
    out = tmp_path / "out"
    code = main(["run", str(recipe), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert not out.exists()


def test_own_masks_that_do_not_fit_are_refused_by_the_check(tmp_path):
    save_file({"fc1": torch.ones(3, 3)}, tmp_path / "masks.safetensors")
    config = Prune(pattern="unstructured", criterion="custom", masks=str(tmp_path / "masks.safetensors"))
    with pytest.raises(UserError, match=r"^prune.masks: mask 'fc1' has shape \(3, 3\), the weight \(128, 256\)"):
        check_prune(DigitsCNN(), config, has_data=True)
