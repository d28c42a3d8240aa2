"""docs/recipes.md documents every field of every stage."""

from pathlib import Path

import pytest

from edgecompress.orchestration.pipeline.stages import Factorize, Finetune, Prune, Qat, Quantize

DOC = (Path(__file__).resolve().parents[2] / "docs" / "recipes.md").read_text()


@pytest.mark.parametrize("config", [Prune, Finetune, Factorize, Qat, Quantize])
def test_every_stage_field_is_documented(config):
    section = DOC.split(f"### {config.model_fields['stage'].default}", 1)[1].split("\n### ", 1)[0]
    missing = [f for f in config.model_fields if f != "stage" and f"`{f}`" not in section]
    assert missing == []


def test_every_execution_field_is_documented():
    from edgecompress.orchestration.recipe.schema import Execution

    section = DOC.split("## Execution", 1)[1].split("\n## ", 1)[0]
    assert [f for f in Execution.model_fields if f"`{f}`" not in section] == []
