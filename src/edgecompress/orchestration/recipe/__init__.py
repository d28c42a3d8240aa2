"""Recipes: a YAML (or dict) naming the model, the task and the ordered stages; the stage configs serialized."""

from edgecompress.orchestration.recipe.load import load_recipe, parse_recipe
from edgecompress.orchestration.recipe.run import run_recipe
from edgecompress.orchestration.recipe.schema import Recipe, TrainSettings

__all__ = ["Recipe", "TrainSettings", "load_recipe", "parse_recipe", "run_recipe"]
