"""Stage configs: small frozen objects that say what a stage does, validated when they are built.

Each config lives with its technique (`techniques/prune/config.py`, `techniques/quantize/config.py`,
`techniques/lowrank/stage.py`, `techniques/finetune.py`); this module gathers them for the pipeline and the
recipe. A recipe is a list of them; the YAML recipe is their serialized form.
"""

from __future__ import annotations

from edgecompress.orchestration.pipeline.handlers import stage_union
from edgecompress.techniques.distill import Distill
from edgecompress.techniques.finetune import Finetune
from edgecompress.techniques.lowrank.stage import Factorize
from edgecompress.techniques.prune.config import Prune
from edgecompress.techniques.prune.criteria import Custom, Magnitude, Movement, OwnMasks, Random, Taylor, Wanda
from edgecompress.techniques.prune.patterns import NM, Blocks, Channels, Unstructured
from edgecompress.techniques.prune.sparsegpt import SparseGPT
from edgecompress.techniques.quantize.config import BlockQat, CastFp16, Qat, Quantize, QuantizeDynamic, QuantizeInt4, QuantizeStatic
from edgecompress.techniques.stage import StageConfig
from edgecompress.techniques.transformer import RemoveFfn, RemoveHeads

AnyStage = stage_union()

__all__ = [
    "AnyStage", "StageConfig", "default_recipe",
    "Prune", "Finetune", "Factorize", "Qat", "Distill", "BlockQat", "RemoveFfn", "RemoveHeads", "SparseGPT",
    "Quantize", "QuantizeStatic", "QuantizeDynamic", "CastFp16", "QuantizeInt4",
    "Unstructured", "Channels", "Blocks", "NM",
    "Magnitude", "Random", "Taylor", "Wanda", "Movement", "Custom", "OwnMasks",
]


def default_recipe() -> list[StageConfig]:
    """The demo's recipe: remove half the channels, fine-tune with distillation, train the weights onto a ternary
    grid, then static int8. Ternary weights are what makes the packed file >= 40x smaller (1.6 bits a weight);
    the first and last layers (784 weights) stay int8, as in most ternary networks. Measured at seeds 0-4, the
    int8 file is at most 0.28 points below the baseline (BitNet's absmean rule, all layers but the classifier
    ternary, lr 1e-3, lost up to 1.39)."""
    return [
        Prune(pattern=Channels(), criterion=Magnitude(norm=2), amount=0.5),
        Finetune(epochs=24, lr=2e-3, distill=0.5),
        Qat(bits="ternary", epochs=16, lr=2e-3, distill=0.5, keep=("conv1", "fc2")),
        QuantizeStatic(),
    ]
