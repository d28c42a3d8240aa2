"""Every check `run` makes before it writes anything, with every problem reported at once: what `edgecompress
validate` runs, and what `edgecompress run` starts with.

The fields and stage order (`load.recipe_problems`), then the model, its weights and the task loaded (the
code a recipe names is imported and called, as `run` would), the task's data run through the model once, and
the stage settings checked against the model's layers. Nothing is trained, exported or written.

The first part reads the recipe alone and imports no torch. The second needs the model, so it imports torch
(not ONNX Runtime, matplotlib or Torch-Pruning). A built-in model (without weights) and a built-in task are
known to load and to fit each other: their recipe reaches the second part only when its stages are valid, and
then only to build the model and check the stages against its layers (the task's data is not loaded).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgecompress.core.errors import UserError
from edgecompress.core.models.registry import BUILTIN_MODELS
from edgecompress.core.tasks.registry import BUILTIN_TASKS
from edgecompress.orchestration.pipeline.checks import check_stages
from edgecompress.orchestration.recipe.load import raise_problems, read_recipe, recipe_problems, split_problems
from edgecompress.orchestration.recipe.schema import Recipe


@dataclass
class CheckedRecipe:
    """A recipe that passed every check, with its model (as `load_model` returns it) and task, ready to run."""

    recipe: Recipe
    loaded: object  # core.models.loading.LoadedModel
    checked_task: object = None  # core.tasks.task.Task; None for a built-in task, loaded when first asked for

    @property
    def task(self):
        """The recipe's task. A built-in one is loaded here, on first use: checking needs none of its data (a
        built-in model fits it), so `validate` never pays for it (scikit-learn's import, the digits split)."""
        if self.checked_task is None:
            from edgecompress.core.tasks.registry import load_task

            self.checked_task = load_task(self.recipe.task, self.recipe.seed)
        return self.checked_task

    @property
    def task_name(self) -> str:
        return self.checked_task.name if self.checked_task is not None else self.recipe.task


def check_recipe(path: str | Path, seed: int | None = None, target: str | None = None, trust_pickle: bool = False,
                 trust_code: bool = False) -> CheckedRecipe:
    """Check the recipe file at `path` as `run` would (`seed`/`target` override its own); every problem in one
    UserError. The model is built after seeding with the recipe's seed, as `run` builds it.

    >>> check_recipe("examples/digits.yaml").recipe.stages[0].stage  # doctest: +SKIP
    'prune'
    """
    path, data = read_recipe(path, seed, target)
    parsed = recipe_problems(data, str(path), folder=path.parent)
    problems, fields = parsed.problems, parsed.data
    model, weights, task_spec = fields.get("model"), fields.get("weights"), fields.get("task", "digits")
    # A built-in model without weights and a built-in task always load, and fit each other (the task has
    # training data): loading them finds nothing, only the stages need the model.
    builtin_pair = isinstance(model, str) and isinstance(task_spec, str) and model in BUILTIN_MODELS and task_spec in BUILTIN_TASKS and weights is None
    if parsed.recipe is None and builtin_pair:
        raise_problems(problems, str(path))  # the stages are wrong: nothing is left to check, and no torch is imported
    loaded, task = _load_model_and_task(problems, fields, trust_pickle, trust_code, with_task=not builtin_pair)
    if parsed.recipe is not None and loaded is not None and (task is not None or builtin_pair):
        from edgecompress.core.tasks.checks import check_task

        if builtin_pair or _checked(problems, check_task, loaded.module, task) is not None:
            has_data = builtin_pair or task.train_loader is not None
            labels = builtin_pair or task.labels
            _checked(problems, check_stages, loaded.module, parsed.recipe.stages, has_data=has_data, has_labels=labels,
                     task_name=parsed.recipe.task)
    raise_problems(problems, str(path))
    return CheckedRecipe(parsed.recipe, loaded, task)


def _load_model_and_task(problems: list[str], fields: dict, trust_pickle: bool, trust_code: bool, with_task: bool) -> tuple:
    """The recipe's model (as `load_model` returns it) and task (unless not `with_task`), each None where
    loading it found problems (added to `problems`); a field already found wrong is not loaded. Torch is
    imported from here on: the model is built, seeded with the recipe's seed as `run` builds it."""
    from edgecompress.core.models import load_model
    from edgecompress.core.seeding import MAX_SEED, seed_everything
    from edgecompress.core.tasks.registry import load_task
    from edgecompress.families.registry import FAMILIES, load_family

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
        if with_task and isinstance(task_spec, str) and "task" not in named:
            task = _checked(problems, load_task, task_spec, recipe_seed)
    return loaded, task


def _checked(problems: list[str], check, *args, **kwargs):
    """`check(*args, **kwargs)`'s result (True for None), or None with its problems added to `problems`."""
    try:
        result = check(*args, **kwargs)
    except UserError as exc:
        problems.extend(split_problems(exc))
        return None
    return True if result is None else result
