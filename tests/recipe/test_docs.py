"""docs/recipes.md documents every field of every stage."""

from pathlib import Path
from typing import get_args

import pytest

from edgecompress.orchestration.pipeline.handlers import HANDLERS
from edgecompress.techniques.prune.config import AnyCriterion, AnyPattern

DOC = (Path(__file__).resolve().parents[2] / "docs" / "recipes.md").read_text()


def _section(stage: str) -> str:
    return DOC.split(f"### {stage}", 1)[1].split("\n### ", 1)[0]


@pytest.mark.parametrize("config", list(HANDLERS), ids=lambda c: c.__name__)
def test_every_field_of_every_registered_stage_config_is_documented(config):
    section = _section(config.model_fields["stage"].default)
    missing = [f for f in config.model_fields if f != "stage" and f"`{f}`" not in section]
    assert missing == []


@pytest.mark.parametrize("union", [AnyPattern, AnyCriterion], ids=["patterns", "criteria"])
def test_every_pattern_and_criterion_is_documented_with_its_fields(union):
    section = _section("prune")
    for config in get_args(get_args(union)[0]):  # Annotated[Union[...], discriminator] -> the classes
        fields = [f for f, info in config.model_fields.items() if f != "kind" and not info.exclude]
        kind = config.model_fields["kind"].default
        assert f"| `{kind}` | `{config.__name__}(" in section
        assert [f for f in fields if f"`{f}`" not in section] == []


def test_every_execution_field_is_documented():
    from edgecompress.orchestration.recipe.schema import Execution

    section = DOC.split("## Execution", 1)[1].split("\n## ", 1)[0]
    assert [f for f in Execution.model_fields if f"`{f}`" not in section] == []
