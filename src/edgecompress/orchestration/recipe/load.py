"""Read and validate a recipe in full before anything runs: every problem reported at once.

A recipe may come from someone else: it is read under the limits of `edgecompress.untrusted` (file size,
aliases, nesting, duplicate keys) and error messages quote at most a few dozen characters of any value.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from edgecompress.core.errors import UserError
from edgecompress.orchestration.recipe.schema import Recipe
from edgecompress.storage.paths import check_input_file
from edgecompress.untrusted.limits import MAX_RECIPE_BYTES
from edgecompress.untrusted.quoting import quote
from edgecompress.untrusted.regular_files import read_regular_text
from edgecompress.untrusted.yaml_files import load_bounded_yaml

MAX_LISTED_PROBLEMS = 10  # a recipe with thousands of bad values gets the first ten and a count


def load_recipe(path: str | Path, seed: int | None = None, target: str | None = None) -> Recipe:
    """Parse a YAML recipe file (`seed`/`target` override its own); all errors are raised together as one UserError."""
    path = check_input_file(path, "recipe")
    text = read_regular_text(path, "recipe: file", MAX_RECIPE_BYTES)
    try:
        data = load_bounded_yaml(text)
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: an integer too long for Python to convert
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise UserError(f"recipe: {path} is not valid YAML{where}: {str(getattr(exc, 'problem', exc))[:200]}") from None
    overrides = {k: v for k, v in (("seed", seed), ("target", target)) if v is not None}
    if overrides and isinstance(data, dict):
        data = {**data, **overrides}
    return parse_recipe(data, source=str(path))


def parse_recipe(data, source: str = "recipe") -> Recipe:
    """Validate a recipe given as a mapping (the parsed YAML)."""
    if not isinstance(data, dict):
        raise UserError(f"recipe: {source} must be a mapping with model, task and stages; got {type(data).__name__}")
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        problems = [_describe(error, data) for error in errors[:MAX_LISTED_PROBLEMS]]
        more = f"; and {len(errors) - MAX_LISTED_PROBLEMS} more" if len(errors) > MAX_LISTED_PROBLEMS else ""
        raise UserError(f"recipe: {len(errors)} problem(s) in {source}: " + "; ".join(problems) + more) from None
    from edgecompress.orchestration.pipeline.run import validate_recipe

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
        parts.append(f"stage {index + 1}" + (f" ({_name(kind)})" if kind else ""))
        loc = _without_tags(loc[2:], stage)
    field = ".".join(_name(x) for x in loc)
    where = ": ".join(p for p in (" ".join(parts), field) if p) or "recipe"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "union_tag_invalid":
        message = f"unknown stage {quote(error['input'].get('stage'))}; allowed: {', '.join(_stage_names())}"
    elif error["type"] == "union_tag_not_found":
        message = f"each stage needs a 'stage' field ({', '.join(_stage_names())})"
    elif error["type"] == "extra_forbidden":
        message = "unknown field"
    given = error.get("input")
    if error["type"] not in ("missing", "union_tag_invalid", "union_tag_not_found") and not isinstance(given, dict):
        message += f" (given {quote(given)})"
    return f"{where}: {message[:300]}"


def _stage_names() -> list[str]:
    from edgecompress.orchestration.pipeline.handlers import HANDLERS

    return list(dict.fromkeys(config.model_fields["stage"].default for config in HANDLERS))


def _without_tags(loc: list, value) -> list:
    """The path without the tags pydantic adds for tagged unions (stage, quantize mode, pattern kind...)."""
    out = []
    for part in loc:
        tags = (value.get("stage"), value.get("mode", "static"), value.get("kind")) if isinstance(value, dict) else (value,)
        if not (isinstance(value, dict) and part in value) and part in tags:
            continue  # a union tag (or a flat `pattern: nm`), not a field
        out.append(part)
        value = value.get(part) if isinstance(value, dict) else None
    return out


def _name(part) -> str:
    """A field name or stage kind as written when short, quoted and cut when not (it may be any YAML value)."""
    return str(part) if isinstance(part, (str, int)) and len(str(part)) <= 40 else quote(part)
