"""Every check `run` makes before it writes anything, with every problem reported at once: what `edgecompress
validate` runs, and what `edgecompress run` starts with.

The fields and stage order (`load.recipe_problems`), then the model, its weights and the task loaded (the
code a recipe names is imported and called, as `run` would), the task's data run through the model once, and
the stage settings checked against the model's layers. Nothing is trained, exported or written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgecompress.core.errors import UserError
from edgecompress.orchestration.recipe.load import raise_problems, read_recipe, recipe_problems, split_problems
from edgecompress.orchestration.recipe.schema import Recipe


@dataclass
class CheckedRecipe:
    """A recipe that passed every check, with its model (as `load_model` returns it) and task, ready to run."""

    recipe: Recipe
    loaded: object  # core.models.loading.LoadedModel
    task: object  # core.tasks.task.Task


def check_recipe(path: str | Path, seed: int | None = None, target: str | None = None, trust_pickle: bool = False,
                 trust_code: bool = False) -> CheckedRecipe:
    """Check the recipe file at `path` as `run` would (`seed`/`target` override its own); every problem in one
    UserError. The model is built after seeding with the recipe's seed, as `run` builds it.

    >>> check_recipe("examples/digits.yaml").recipe.stages[0].stage  # doctest: +SKIP
    'prune'
    """
    from edgecompress.core.models import load_model
    from edgecompress.core.seeding import MAX_SEED, seed_everything
    from edgecompress.core.tasks.checks import check_task
    from edgecompress.core.tasks.registry import load_task
    from edgecompress.families.registry import FAMILIES, load_family
    from edgecompress.orchestration.pipeline.run import check_stages

    path, data = read_recipe(path, seed, target)
    parsed = recipe_problems(data, str(path), folder=path.parent)
    problems, fields = parsed.problems, parsed.data
    model, weights, task_spec = fields.get("model"), fields.get("weights"), fields.get("task", "digits")
    given_seed = fields.get("seed", 0)
    recipe_seed = given_seed if type(given_seed) is int and 0 <= given_seed <= MAX_SEED else 0
    named = {p.split(":", 1)[0] for p in problems}  # fields already found wrong are not loaded as well
    loaded = task = None
    seed_everything(recipe_seed)
    if isinstance(task_spec, str) and task_spec in FAMILIES:  # a model family loads its model and builds its task together
        if fields.get("train") is not None:
            problems.append(f"train: the {task_spec} task compresses a trained model; remove the train section")
        elif isinstance(model, str) and not {"model", "weights"} & named:
            pair = _checked(problems, load_family, task_spec, model, recipe_seed, weights if isinstance(weights, str) else None)
            loaded, task = pair if isinstance(pair, tuple) else (None, None)
    else:
        if isinstance(model, str) and not {"model", "weights"} & named:
            loaded = _checked(problems, load_model, model, weights=weights if isinstance(weights, str) else None,
                              trust_pickle=trust_pickle, trust_code=trust_code)
        if isinstance(task_spec, str) and "task" not in named:
            task = _checked(problems, load_task, task_spec, recipe_seed)
    if parsed.recipe is not None and loaded is not None and task is not None:
        if _checked(problems, check_task, loaded.module, task) is not None:
            _checked(problems, check_stages, loaded.module, parsed.recipe.stages, has_data=task.train_loader is not None)
    raise_problems(problems, str(path))
    return CheckedRecipe(parsed.recipe, loaded, task)


def _checked(problems: list[str], check, *args, **kwargs):
    """`check(*args, **kwargs)`'s result (True for None), or None with its problems added to `problems`."""
    try:
        result = check(*args, **kwargs)
    except UserError as exc:
        problems.extend(split_problems(exc))
        return None
    return True if result is None else result
