"""Run a validated recipe: load the model and task, optionally train, then `compress`."""

from __future__ import annotations

from pathlib import Path

import yaml

from edgecompress.errors import UserError
from edgecompress.files import atomic_write_text, check_output_dir
from edgecompress.models import load_model
from edgecompress.pipeline.run import RunResult, compress
from edgecompress.progress import console
from edgecompress.recipe.schema import Recipe
from edgecompress.seeding import seed_everything
from edgecompress.tasks.registry import load_task
from edgecompress.train import train_epochs


def run_recipe(recipe: Recipe, out_dir: str | Path, trust_pickle: bool = False) -> RunResult:
    """Everything `edgecompress run` does; the model and task are resolved before any output is written.

    >>> run_recipe(load_recipe("examples/digits.yaml"), "runs/digits")  # doctest: +SKIP
    """
    check_output_dir(out_dir)
    seed_everything(recipe.seed)  # before the model is built: its initial weights come from the seed
    problems = []
    loaded = task = None
    try:
        loaded = load_model(recipe.model, weights=recipe.weights, trust_pickle=trust_pickle)
    except UserError as exc:
        problems.append(str(exc))
    try:
        task = load_task(recipe.task, recipe.seed)
    except UserError as exc:
        problems.append(str(exc))
    if problems:
        raise UserError("recipe: " + "; ".join(problems))
    model = loaded.module
    if recipe.train is not None:
        console.log(f"training {recipe.model} for {recipe.train.epochs} epochs")
        train_epochs(model, task, recipe.train.epochs, lr=recipe.train.lr, description="baseline")
    arch = recipe.model if loaded.default_input_shape is not None or ":" in recipe.model else None
    result = compress(model, task, recipe.stages, out_dir, seed=recipe.seed, arch=arch)
    atomic_write_text(Path(out_dir) / "recipe.yaml", yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False))
    return result
