"""Recipes: a YAML (or dict) naming the model, the task and the ordered stages; the stage configs serialized.

The names load on first use (`core/lazy.py`): checking a recipe (`check.py`, `load.py`) imports no torch
until it reaches the model; running one (`run.py`) needs everything.
"""

from edgecompress.core.lazy import lazy_exports

__all__ = ["Recipe", "TrainSettings", "load_recipe", "parse_recipe", "run_recipe"]
__getattr__, __dir__ = lazy_exports(__name__, {
    "Recipe": "edgecompress.orchestration.recipe.schema",
    "TrainSettings": "edgecompress.orchestration.recipe.schema",
    "load_recipe": "edgecompress.orchestration.recipe.load",
    "parse_recipe": "edgecompress.orchestration.recipe.load",
    "run_recipe": "edgecompress.orchestration.recipe.run",
})
