"""The checks `compress` makes before any work, each also run alone: the stage order (`validate_recipe`, on
the configs only: no torch) and the stage settings against the model's layers (`check_stages`: it reads the
model, so it imports torch, and only then). `run` and `validate` make both before anything else.
"""

from __future__ import annotations

from typing import Sequence

from edgecompress.core.errors import UserError
from edgecompress.orchestration.pipeline.handlers import HANDLERS
from edgecompress.techniques.config import StageConfig
from edgecompress.techniques.lowrank.config import Factorize


def validate_recipe(stages: Sequence[StageConfig]) -> None:
    """Check the stage order before any work: every problem at once, each naming the stage."""
    problems = []
    left_torch_at = None
    for index, stage in enumerate(stages, start=1):
        if type(stage) not in HANDLERS:
            problems.append(f"stage {index}: {type(stage).__name__} is not a known stage type")
            continue
        if left_torch_at is not None:
            problems.append(
                f"stage {index} ({stage.name}): cannot follow stage {left_torch_at} (quantize), "
                "whose output is an ONNX model; move it before the quantize stage"
            )
        if stage.leaves_torch and left_torch_at is None:
            left_torch_at = index
    if problems:
        raise UserError("recipe: " + "; ".join(problems))


def check_stages(model, stages, has_data: bool, has_labels: bool = True, task_name: str = "") -> None:
    """Every check that needs no work, before any output is written: stages that train on labels against a
    task without them, prune settings, removal settings (heads, layers) against the model, and `keep_float` patterns of quantize stages while the layer names are
    still the model's (no factorize before them)."""
    if not has_labels:
        labelled = [f"stage {i} ({s.name})" for i, s in enumerate(stages, start=1) if s.needs_labels]
        if labelled:
            raise UserError(f"{', '.join(labelled)}: the {task_name} task has no labels to train on; "
                            "recover fidelity with a distill stage (stage: distill) instead")
    from edgecompress.techniques.prune.checks import check_prune_stages  # torch: the checks read the model's layers
    from edgecompress.techniques.quantize.mixed_precision import explicit_float_layers
    from edgecompress.techniques.transformer.checks import check_removal_stages

    check_prune_stages(model, stages, has_data=has_data)
    check_removal_stages(model, stages, has_data=has_data)
    for stage in stages:
        if isinstance(stage, Factorize):
            break
        if getattr(stage, "keep_float", ()):
            explicit_float_layers(model, stage.keep_float)
