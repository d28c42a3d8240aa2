"""Read and validate a recipe in full before anything runs: every problem reported at once."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from edgecompress.errors import UserError
from edgecompress.paths import check_input_file
from edgecompress.recipe.schema import Recipe


def load_recipe(path: str | Path, seed: int | None = None) -> Recipe:
    """Parse a YAML recipe file (with `seed` overriding its seed); all errors are raised together as one UserError."""
    path = check_input_file(path, "recipe")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise UserError(f"recipe: {path} is not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    except UnicodeDecodeError:
        raise UserError(f"recipe: {path} is not UTF-8 text") from None
    if seed is not None and isinstance(data, dict):
        data = {**data, "seed": seed}
    return parse_recipe(data, source=str(path))


def parse_recipe(data, source: str = "recipe") -> Recipe:
    """Validate a recipe given as a mapping (the parsed YAML)."""
    if not isinstance(data, dict):
        raise UserError(f"recipe: {source} must be a mapping with model, task and stages; got {type(data).__name__}")
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as exc:
        problems = [_describe(error, data) for error in exc.errors()]
        raise UserError(f"recipe: {len(problems)} problem(s) in {source}: " + "; ".join(problems)) from None
    from edgecompress.pipeline.run import validate_recipe

    validate_recipe(recipe.stages)
    return recipe


def _describe(error: dict, data: dict) -> str:
    """One pydantic error as 'stages[2] (prune).amount: Input should be less than 1 (given 1.5)'."""
    loc = list(error["loc"])
    parts = []
    if loc and loc[0] == "stages" and len(loc) > 1 and isinstance(loc[1], int):
        index = loc[1]
        stage = data.get("stages", [])[index] if isinstance(data.get("stages"), list) else None
        kind = stage.get("stage") if isinstance(stage, dict) else None
        parts.append(f"stage {index + 1}" + (f" ({kind})" if kind else ""))
        loc = [x for x in loc[2:] if x != kind]  # pydantic repeats the discriminator value in the path
    field = ".".join(str(x) for x in loc)
    where = ": ".join(p for p in (" ".join(parts), field) if p) or "recipe"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "union_tag_invalid":
        message = f"unknown stage {error['input'].get('stage')!r}; allowed: prune, finetune, factorize, qat, quantize"
    elif error["type"] == "union_tag_not_found":
        message = "each stage needs a 'stage' field (prune, finetune, factorize, qat or quantize)"
    elif error["type"] == "extra_forbidden":
        message = "unknown field"
    given = error.get("input")
    if error["type"] not in ("missing", "union_tag_invalid", "union_tag_not_found") and not isinstance(given, dict):
        message += f" (given {given!r})"
    return f"{where}: {message}"
