"""Recipes: a YAML (or dict) naming the model, the task and the ordered stages; the stage configs serialized."""

from edgecompress.recipe.schema import Recipe, TrainSettings
from edgecompress.recipe.load import load_recipe, parse_recipe
from edgecompress.recipe.run import run_recipe

__all__ = ["Recipe", "TrainSettings", "load_recipe", "parse_recipe", "run_recipe"]
