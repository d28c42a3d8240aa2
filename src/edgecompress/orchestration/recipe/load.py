"""Read and validate a recipe in full before anything runs: every problem reported at once.

A recipe may come from someone else: it is read under the limits of `edgecompress.untrusted` (file size,
aliases, nesting, duplicate keys) and error messages quote at most a few dozen characters of any value.
"""

from __future__ import annotations

import difflib
import os
import re
import typing
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError

from edgecompress.core.errors import UserError
from edgecompress.orchestration.pipeline.stages import AnyStage
from edgecompress.orchestration.recipe.schema import Recipe
from edgecompress.storage.paths import PATH_MAX, check_input_file, check_path_length
from edgecompress.untrusted.limits import MAX_RECIPE_BYTES
from edgecompress.untrusted.quoting import quote
from edgecompress.untrusted.regular_files import read_regular_text
from edgecompress.untrusted.yaml_files import load_bounded_yaml

MAX_LISTED_PROBLEMS = 10  # a recipe with thousands of bad values gets the first ten and a count
# names other tools use for a field, and the field they mean here (difflib finds typos; these are not typos)
FIELD_SYNONYMS = {"learning_rate": "lr", "num_epochs": "epochs", "n_epochs": "epochs", "sparsity": "amount",
                  "distillation": "distill", "ratio": "amount"}


def load_recipe(path: str | Path, seed: int | None = None, target: str | None = None) -> Recipe:
    """Parse a YAML recipe file (`seed`/`target` override its own); all errors are raised together as one UserError.

    File paths in it (a saved `model` file, `weights`, `path/file.py:function`) are relative to the recipe's
    folder, and come back absolute.
    """
    path, data = read_recipe(path, seed, target)
    parsed = recipe_problems(data, str(path), folder=path.parent)
    raise_problems(parsed.problems, str(path))
    return parsed.recipe


def read_recipe(path: str | Path, seed: int | None = None, target: str | None = None) -> tuple[Path, object]:
    """The checked path and the parsed YAML of a recipe file, with `seed`/`target` put over its own."""
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
    return path, data


def parse_recipe(data, source: str = "recipe") -> Recipe:
    """Validate a recipe given as a mapping (the parsed YAML); file paths in it are taken as they are."""
    parsed = recipe_problems(data, source)
    raise_problems(parsed.problems, source)
    return parsed.recipe


def raise_problems(problems: list[str], source: str) -> None:
    """Every problem of a recipe in one line (the first MAX_LISTED_PROBLEMS, and a count of the rest)."""
    if not problems:
        return
    more = f"; and {len(problems) - MAX_LISTED_PROBLEMS} more" if len(problems) > MAX_LISTED_PROBLEMS else ""
    raise UserError(f"recipe: {len(problems)} problem(s) in {source}: " + "; ".join(problems[:MAX_LISTED_PROBLEMS]) + more)


@dataclass
class Parsed:
    """A recipe's mapping (file paths joined to its folder), the Recipe (None if any problem) and the problems."""

    data: dict
    recipe: Recipe | None
    problems: list[str]


def recipe_problems(data, source: str, folder: Path | None = None) -> Parsed:
    """The recipe and every problem found in it at once: its fields (with "did you mean" for unknown names),
    the order of its stages (checked even when other fields are wrong), and with `folder`, the files it names,
    looked for in that folder."""
    if not isinstance(data, dict):
        return Parsed({}, None, [f"{source} must be a mapping with model, task and stages; got {type(data).__name__}"])
    problems, recipe = [], None
    data = {**data, **rebased_paths(data, folder, problems)} if folder is not None else data
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()  # only the ones shown are described (thousands of bad values cost one count)
        problems += [_describe(error, data) for error in errors[:MAX_LISTED_PROBLEMS]] + [""] * (len(errors) - MAX_LISTED_PROBLEMS)
    if recipe is not None:
        problems += _order_problems(recipe.stages, set())
    elif isinstance(data.get("stages"), list):
        problems += _order_problems(*_stages_for_order(data["stages"]))
    return Parsed(data, recipe if not problems else None, problems)


def _stages_for_order(items: list) -> tuple[list, set[int]]:
    """Stage configs standing for `items`, to check their order though some are wrong: each valid one as it is,
    a wrong one as its kind with default settings (where it sits is what matters), an unknown kind as a torch
    stage whose own problems are left out (its numbers in the second value)."""
    from edgecompress.orchestration.pipeline.handlers import HANDLERS

    adapter, stages, unknown = TypeAdapter(AnyStage), [], set()
    for number, item in enumerate(items, start=1):
        try:
            stages.append(adapter.validate_python(item))
            continue
        except ValidationError:
            pass
        kinds = [c for c in HANDLERS if isinstance(item, dict) and c.model_fields["stage"].default == item.get("stage")]
        if len(kinds) > 1:
            mode = item.get("mode", kinds[0].model_fields["mode"].default)
            kinds = [c for c in kinds if c.model_fields["mode"].default == mode]
        if len(kinds) != 1:
            unknown.add(number)
            kinds = [next(c for c in HANDLERS if not c.model_construct().leaves_torch)]
        stages.append(kinds[0].model_construct())
    return stages, unknown


def _order_problems(stages: list, unknown: set[int]) -> list[str]:
    from edgecompress.orchestration.pipeline.checks import validate_recipe

    try:
        validate_recipe(stages)
    except UserError as exc:
        return [p for p in split_problems(exc) if not any(p.startswith(f"stage {n} (") for n in unknown)]
    return []


def split_problems(exc: UserError) -> list[str]:
    """The problems in a stage check's error ("recipe: stage 2 (...): ...; stage 3 (...): ..."), one a stage."""
    return re.split(r"; (?=stage \d+)", str(exc).removeprefix("recipe: "))


def rebased_paths(data: dict, folder: Path, problems: list[str]) -> dict:
    """The recipe's file paths (a saved `model` file, `weights`, `path/file.py:function` in `model` or `task`)
    joined to the recipe's `folder` when relative; a path not found there is a problem saying where it looked."""
    from edgecompress.core.models.registry import BUILTIN_MODELS
    from edgecompress.core.tasks.registry import BUILTIN_TASKS

    out = {}
    for field, known in {"model": BUILTIN_MODELS, "weights": {}, "task": BUILTIN_TASKS}.items():
        spec = data.get(field)
        if not isinstance(spec, str) or spec in known:
            continue
        try:
            rebased = _rebased(field, spec, folder, problems)
        except UserError as exc:  # a name longer than the system allows
            problems.append(str(exc))
        except OSError as exc:  # the folder cannot be searched (permissions, a loop of links)
            problems.append(f"{field}: cannot look for {quote(spec)} in {folder}: {exc.strerror or exc}")
        else:
            if rebased is not None:
                out[field] = rebased
    return out


def _rebased(field: str, spec: str, folder: Path, problems: list[str]) -> str | None:
    """`spec` with its file joined to `folder`; None when it names no relative file."""
    from edgecompress.core.models.registry import WEIGHT_SUFFIXES

    file, function = spec.rpartition(":")[0::2] if ":" in spec and field != "weights" else (spec, "")
    if (function or field == "task") and not file.endswith(".py"):
        return None  # package.module:function: imported, not a file
    if not file or Path(file).is_absolute():
        return None
    check_path_length(folder / file, field)
    resolved = (folder / file).resolve()
    if field == "model" and not function and resolved.is_dir():
        return str(resolved)  # a model folder (a Hugging Face encoder for task: sentence-encoder)
    if field == "model" and not function and Path(file).suffix not in WEIGHT_SUFFIXES and not resolved.is_file():
        return None  # not a file: an unknown name, which loading the model reports with the names it knows
    if not resolved.exists():
        problems.append(_not_found(field, file, resolved, folder))
    return f"{resolved}:{function}" if function else str(resolved)


def _not_found(field: str, file: str, resolved: Path, folder: Path) -> str:
    message = f"{field}: {quote(file)} not found: looked for {resolved} (a path in a recipe is relative to the recipe's folder)"
    here = Path.cwd() / file
    if len(os.fsencode(here)) <= PATH_MAX and here.exists():
        message += f"; {here} exists: write its path relative to {folder.resolve()}, or an absolute path"
    return message


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
    if error["type"] == "union_tag_invalid":  # an unknown stage, quantize mode, pattern or criterion kind
        tag, allowed = error["ctx"]["tag"], [t.strip(" '") for t in str(error["ctx"]["expected_tags"]).split(",")]
        kind = str(error["ctx"]["discriminator"]).strip("'")
        message = f"unknown {kind} {quote(tag)}{_did_you_mean(tag, allowed)} (allowed: {', '.join(allowed)})"
    elif error["type"] == "union_tag_not_found":
        message = f"each stage needs a 'stage' field ({', '.join(_stage_names())})"
    elif error["type"] == "extra_forbidden":
        message = "unknown field" + _did_you_mean(error["loc"][-1], _known_fields(list(error["loc"]), data))
    given = error.get("input")
    if error["type"] not in ("missing", "union_tag_invalid", "union_tag_not_found") and not isinstance(given, dict):
        message += f" (given {quote(given)})"
    return f"{where}: {message[:300]}"


def _did_you_mean(name, known) -> str:
    """', did you mean 'distill'?' for a misspelt or foreign field name (`distil`, `learning_rate`), else ''."""
    if not isinstance(name, str) or len(name) > 100:
        return ""
    known = list(known)
    close = difflib.get_close_matches(name.lower(), known, n=1, cutoff=0.6)
    synonym = FIELD_SYNONYMS.get(name.lower())
    match = close[0] if close else (synonym if synonym in known else None)
    return f", did you mean {quote(match)}?" if match and match != name else ""


def _known_fields(loc: list, data: dict) -> list[str]:
    """The field names allowed where an unknown field `loc[-1]` was found; `loc` names fields, list indices and
    the tags pydantic adds for tagged unions (stage, quantize mode, pattern kind), which choose the class."""
    classes: list[type[BaseModel]] = [Recipe]
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        owners = [c for c in classes if part in c.model_fields]
        if owners:
            classes = [m for c in owners for m in _models_in(c.model_fields[part].annotation)]
        else:  # a union tag: keep the classes it names
            classes = [c for c in classes if part in {c.model_fields[t].default for t in ("stage", "mode", "kind") if t in c.model_fields}] or classes
    return sorted({name for c in classes for name in c.model_fields})


def _models_in(annotation) -> list[type[BaseModel]]:
    """The pydantic classes a field's type may hold: through Optional, list, Annotated and unions."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


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
