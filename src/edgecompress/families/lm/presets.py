"""The language-model routes: named stage lists on the one pipeline (`examples/lm-ROUTE.yaml` are the same recipes).

- int8: dynamic int8 MatMuls (ONNX Runtime's MatMulInteger, activations quantized per call) with the token
  table in 8 bits per row block: about 4x smaller, exact on every CPU class by the int8 target's format.
- int4: weight-only 4-bit blocks of 32 (ONNX Runtime's MatMulNBits, the format ONNX Runtime GenAI ships),
  rounded by GPTQ on calibration windows, with a 4-bit token table: about 5.5x smaller.
- ternary: BitNet b1.58's absmean ternary weights {-a, 0, +a} per output channel on every Linear layer but the
  tied output layer, recovered by KL distillation within a time budget, then shipped as the int8 route ships
  (each channel's scale becomes its int8 scale: the file holds -64, 0 and 64 only, exact on every CPU class)
  with a 4-bit token table. The ONNX file is int8-sized; the packed .ecz stores the ternary weights at about
  1.6 bits each (stdlib-coder: 0.094x the fp32 file, perplexity 200.6 against 199.5). The token table and the
  output layer it is tied to stay out of the ternary grid, as in BitNet.
"""

from __future__ import annotations

from edgecompress.core.errors import UserError
from edgecompress.techniques.distill import Distill
from edgecompress.techniques.distill.budget import with_distill_seconds
from edgecompress.techniques.quantize.config import Qat, QuantizeDynamic, QuantizeInt4
from edgecompress.techniques.stage import StageConfig

TIED_OUTPUT = "*lm_head"  # the output layer, the token table read again: kept out of the ternary grid

ROUTES: dict[str, tuple[StageConfig, ...]] = {
    "int8": (QuantizeDynamic(embedding_bits=8, embedding_block_size=128),),
    "int4": (QuantizeInt4(block_size=32, rounding="gptq", embedding_bits=4, embedding_block_size=32),),
    "ternary": (
        Qat(bits="ternary", ternary_rule="absmean", epochs=1, lr=1e-3, distill=1.0, keep=(TIED_OUTPUT,)),
        Distill(seconds=300, epochs=8, lr=1e-3),
        QuantizeDynamic(embedding_bits=4, embedding_block_size=32),
    ),
}


def route_stages(route: str, distill_seconds: float | None = None) -> list[StageConfig]:
    """A route's stages, with its distillation budget changed (0: no distillation; ternary only).

    >>> [s.stage for s in route_stages("int4")]
    ['quantize']
    >>> [s.stage for s in route_stages("ternary", distill_seconds=60)]
    ['qat', 'distill', 'quantize']
    """
    if route not in ROUTES:
        raise UserError(f"route: unknown route {route!r}; choose one of {', '.join(ROUTES)}")
    return list(ROUTES[route]) if distill_seconds is None else with_distill_seconds(ROUTES, route, distill_seconds)
