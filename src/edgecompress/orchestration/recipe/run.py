"""Run a validated recipe: load the model and task, optionally train, then `compress`."""

from __future__ import annotations

from pathlib import Path

import yaml

from edgecompress.core.errors import UserError
from edgecompress.core.models import load_model
from edgecompress.core.progress import console
from edgecompress.core.seeding import seed_everything
from edgecompress.core.tasks.checks import check_task
from edgecompress.core.tasks.registry import load_task
from edgecompress.core.train import train_epochs
from edgecompress.families.registry import FAMILIES, load_family
from edgecompress.orchestration.pipeline.checkpoints import fingerprint, load_checkpoint, model_fingerprint, save_checkpoint
from edgecompress.orchestration.pipeline.checks import check_stages
from edgecompress.orchestration.pipeline.run import RunResult, compress
from edgecompress.orchestration.recipe.schema import Recipe
from edgecompress.storage.files import atomic_write_text
from edgecompress.storage.paths import check_output_dir
from edgecompress.storage.rundir import owned_run_dir

TRAINED_KEY = "00-trained"


def run_recipe(recipe: Recipe, out_dir: str | Path, trust_pickle: bool = False, resume: bool = False, force: bool = False,
               trust_code: bool = False, resolved: tuple | None = None) -> RunResult:
    """Everything `edgecompress run` does; the model and task are resolved before any output is written.

    With `resume`, a trained baseline and finished stages from an earlier run of the same recipe are reused:
    their checkpoints are loaded into the architecture this recipe names, never one a checkpoint names.
    With `force`, an earlier run in `out_dir` is replaced; without either, a directory holding one is refused.
    `trust_code` lets a weights file's metadata name a module:function (see `load_model`).
    `resolved` is the (loaded model, task) pair `check_recipe` already loaded and checked for this recipe.

    >>> run_recipe(load_recipe("examples/digits.yaml"), "runs/digits")  # doctest: +SKIP
    """
    check_output_dir(out_dir)
    if resolved is None:
        loaded, task = resolve_recipe(recipe, trust_pickle, trust_code)
        check_task(loaded.module, task)
        check_stages(loaded.module, recipe.stages, has_data=task.train_loader is not None)
    else:
        loaded, task = resolved
    model = loaded.module
    with owned_run_dir(out_dir, "run", resume=resume, force=force) as out:
        if recipe.train is not None:
            model = _trained(model, task, recipe, out, resume)
        result = compress(model, task, recipe.stages, out, seed=recipe.seed, arch=loaded.arch, resume=resume, target=recipe.target)
        atomic_write_text(out / "recipe.yaml", yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False))
    return result


def resolve_recipe(recipe: Recipe, trust_pickle: bool = False, trust_code: bool = False):
    """The recipe's model (as `load_model` returns it) and task; both problems reported at once if both fail.

    `model:` and `task:` name code the user chose (explicit consent); a weights file's metadata is not."""
    seed_everything(recipe.seed)  # before the model is built: its initial weights come from the seed
    if recipe.task in FAMILIES:  # a model family loads its model and builds its task together
        if recipe.train is not None:
            raise UserError(f"recipe: train: the {recipe.task} task compresses a trained model; remove the train section")
        return load_family(recipe.task, recipe.model, recipe.seed, recipe.weights)
    problems = []
    loaded = task = None
    try:
        loaded = load_model(recipe.model, weights=recipe.weights, trust_pickle=trust_pickle, trust_code=trust_code)
    except UserError as exc:
        problems.append(str(exc))
    try:
        task = load_task(recipe.task, recipe.seed)
    except UserError as exc:
        problems.append(str(exc))
    if problems:
        raise UserError("recipe: " + "; ".join(problems))
    return loaded, task


def train_baseline(model, task, recipe: Recipe, out: Path | None = None, resume: bool = False):
    """`model` (from `resolve_recipe`) trained as the recipe's `train` section says, in eval mode: the baseline
    that `sweep`, `sensitivity` and `fit --recipe` compress. With `out`, the trained weights are kept in its
    checkpoints/ (the run's TrialStore) and, with `resume`, reused instead of trained again."""
    if recipe.train is not None and out is not None:
        model = _trained(model, task, recipe, out, resume)
    elif recipe.train is not None:
        _train(model, task, recipe)
    return model.eval()


def _train(model, task, recipe: Recipe) -> None:
    console.log(f"training {recipe.model} for {recipe.train.epochs} epochs")
    train_epochs(model, task, recipe.train.epochs, lr=recipe.train.lr, description="baseline")


def _trained(model, task, recipe: Recipe, out: Path, resume: bool):
    """Train the recipe's model, or load the weights a killed run already trained with the same settings."""
    fp = fingerprint("trained", recipe.model, recipe.weights, recipe.train.model_dump(), recipe.seed, model_fingerprint(model))
    loaded = load_checkpoint(out, TRAINED_KEY, fp, model) if resume else None
    if loaded is not None:
        console.log("baseline: resumed the trained weights from checkpoints/")
        return loaded[1]
    _train(model, task, recipe)
    save_checkpoint(out, TRAINED_KEY, fp, {}, model)
    return model
