"""The factorize stage's handler (its config: `config.py`)."""

from __future__ import annotations

import copy

from edgecompress.core.masks import finalize
from edgecompress.techniques.lowrank.config import Factorize
from edgecompress.techniques.lowrank.factorize import factorize
from edgecompress.techniques.stage import ModelState, StageContext


def factorize_stage(config: Factorize, state: ModelState, ctx: StageContext) -> ModelState:
    model = finalize(copy.deepcopy(state.torch_model))  # masks first become plain zeros, then the SVD
    energy = config.energy
    ranks = factorize(model, config.layers, keep=None if energy is not None else config.keep, energy=energy, keep_classifier=config.keep_classifier, convs=config.convs)
    return ModelState(model, details={"factorization": {name: {"rank": r, "full_rank": f} for name, (r, f) in ranks.items()}})
