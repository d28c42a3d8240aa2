"""The language-model routes: named stage lists on the one pipeline (`examples/lm-ROUTE.yaml` are the same recipes).

- int8: dynamic int8 MatMuls (ONNX Runtime's MatMulInteger, activations quantized per call) with the token
  table in 8 bits per row block: about 4x smaller, exact on every CPU class by the int8 target's format.
- int4: weight-only 4-bit blocks of 32 (ONNX Runtime's MatMulNBits, the format ONNX Runtime GenAI ships),
  rounded by GPTQ on calibration windows, with a 4-bit token table: about 5.5x smaller.
"""

from __future__ import annotations

from edgecompress.core.errors import UserError
from edgecompress.techniques.quantize.config import QuantizeDynamic, QuantizeInt4
from edgecompress.techniques.stage import StageConfig

ROUTES: dict[str, tuple[StageConfig, ...]] = {
    "int8": (QuantizeDynamic(embedding_bits=8, embedding_block_size=128),),
    "int4": (QuantizeInt4(block_size=32, rounding="gptq", embedding_bits=4, embedding_block_size=32),),
}


def route_stages(route: str) -> list[StageConfig]:
    """A route's stages.

    >>> [s.stage for s in route_stages("int4")]
    ['quantize']
    """
    if route not in ROUTES:
        raise UserError(f"route: unknown route {route!r}; choose one of {', '.join(ROUTES)}")
    return list(ROUTES[route])
