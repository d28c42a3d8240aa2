"""Typed stage configs: one class per quantize mode and per pattern/criterion; the flat YAML still loads."""

from __future__ import annotations

import pytest
import yaml
from pydantic import ValidationError

import edgecompress as ec
from edgecompress.orchestration.pipeline.handlers import HANDLERS
from edgecompress.orchestration.recipe import load_recipe
from edgecompress.orchestration.recipe.schema import Recipe


def test_quantize_mode_builds_the_mode_class():
    assert type(ec.Quantize()) is ec.QuantizeStatic
    assert type(ec.Quantize(mode="dynamic", per_channel=False)) is ec.QuantizeDynamic
    assert ec.Quantize(mode="int4", block_size=64) == ec.QuantizeInt4(block_size=64)
    assert isinstance(ec.CastFp16(), ec.Quantize) and ec.CastFp16().leaves_torch
    assert "calibration" not in ec.QuantizeDynamic.model_fields  # a mode's class holds only its own fields


@pytest.mark.parametrize(
    "flat, typed",
    [
        ({"pattern": "nm", "n": 1, "m": 4, "criterion": "l1"}, ec.Prune(pattern=ec.NM(1, 4), criterion=ec.Magnitude(norm=1))),
        ({"pattern": "block", "block": [16, 4], "amount": 0.9}, ec.Prune(pattern=ec.Blocks(16, 4), amount=0.9)),
        ({"pattern": "channel", "round_to": 8}, ec.Prune(pattern=ec.Channels(round_to=8))),
        ({"pattern": "unstructured", "criterion": "wanda"}, ec.Prune(pattern=ec.Unstructured(), criterion=ec.Wanda())),
        ({"pattern": "unstructured", "criterion": "custom", "masks": "m.safetensors"},
         ec.Prune(pattern=ec.Unstructured(), criterion=ec.OwnMasks(file="m.safetensors"))),
        ({}, ec.Prune(pattern=ec.Channels(), criterion=ec.Magnitude(norm=2))),
    ],
)
def test_the_flat_spelling_is_converted_to_the_typed_objects(flat, typed):
    assert ec.Prune(**flat) == typed
    assert ec.Prune.model_validate(typed.model_dump(mode="json")) == typed  # the nested spelling round-trips


def test_a_recipe_in_either_spelling_means_the_same(tmp_path):
    stages = {
        "flat": [{"stage": "prune", "pattern": "nm", "n": 2, "m": 4, "criterion": "taylor"}, {"stage": "quantize", "mode": "int4", "block_size": 64}],
        "nested": [{"stage": "prune", "pattern": {"kind": "nm", "n": 2, "m": 4}, "criterion": {"kind": "taylor"}},
                   {"stage": "quantize", "mode": "int4", "block_size": 64}],
    }
    loaded = {}
    for name, spelled in stages.items():
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump({"model": "digits-mlp", "stages": spelled}))
        loaded[name] = load_recipe(tmp_path / f"{name}.yaml").stages
    assert loaded["flat"] == loaded["nested"] == [ec.Prune(pattern=ec.NM(2, 4), criterion=ec.Taylor()), ec.QuantizeInt4(block_size=64)]


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: ec.Prune(pattern=ec.Channels(), criterion=ec.Wanda()), "criterion wanda does not apply to pattern channel"),
        (lambda: ec.Prune(pattern=ec.Channels(), schedule="gradual"), "schedule gradual does not apply to pattern channel"),
        (lambda: ec.Prune(pattern=ec.NM(2, 4), scope="global"), "scope global does not apply to pattern nm"),
        (lambda: ec.Prune(pattern=ec.NM(2, 4), amount=0.3), "amount is fixed at 1 - n/m = 0.5"),
        (lambda: ec.NM(4, 4), "n must be smaller than m"),
        (lambda: ec.Prune(pattern=ec.Unstructured(), criterion=ec.Movement()), "criterion movement needs training"),
        (lambda: ec.Prune(pattern=ec.Blocks(8, 8), criterion=ec.OwnMasks(file="m.safetensors")), "masks are applied as given"),
        (lambda: ec.Prune(pattern="unstructured", n=3), "n applies to pattern nm only"),
        (lambda: ec.Prune(pattern=ec.Unstructured(), criterion=ec.Custom()), "criterion custom needs exactly one of"),
        (lambda: ec.Quantize(mode="dynamic", calibration="mse"), "calibration applies to mode static only, not dynamic"),
        (lambda: ec.QuantizeInt4(block_size=48), r"block_size\n  Value error, must be a power of two"),
    ],
)
def test_combinations_that_make_no_sense_are_refused_when_built(build, message):
    with pytest.raises(ValidationError, match=message):
        build()


def test_every_registered_config_is_a_recipe_stage():
    """The registry is the one list: a config with a handler is also a stage the YAML recipe accepts."""
    required = {ec.Prune: {"pattern": ec.Unstructured()}, ec.RemoveLayers: {"count": 1}}  # the configs without a default for everything
    for config_type in HANDLERS:
        config = config_type(**required.get(config_type, {}))
        recipe = Recipe.model_validate({"model": "digits-cnn", "stages": [config.model_dump(mode="json")]})
        assert recipe.stages == [config]


def test_every_registered_handler_is_a_function_of_config_state_and_context():
    """Handlers are named as "module:function" and imported on first use; each name must resolve."""
    import inspect

    from edgecompress.orchestration.pipeline.handlers import handler_for

    for config_type, name in HANDLERS.items():
        assert list(inspect.signature(handler_for(config_type)).parameters) == ["config", "state", "ctx"], name
