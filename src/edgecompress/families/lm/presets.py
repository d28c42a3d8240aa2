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
- structured: a smaller dense model (Minitron-style width and depth pruning): a third of the query heads of
  every key/value group, three quarters of the FFN neurons (activation-ranked, output projections refitted)
  and the two layers of lowest block influence removed for real, recovered by KL distillation within a time budget, then shipped as the int8 route.
  The query, output and FFN matrices are smaller in the graph, so the model is smaller and faster in any format
  (stdlib-coder: 2.27M of 5.51M parameters left, 0.144x the fp32 file, perplexity 207.0 against 199.5).
- sparse24: SparseGPT 2:4 on every Linear layer but the tied output layer, recovered by KL distillation with
  the masks held, then int8 as the int8 route. ONNX Runtime has no 2:4 kernel on CPU and stores the zeros
  densely: the ONNX file is int8-sized and no faster; the zeros pay off in the packed .ecz only (stdlib-coder:
  perplexity 200.0, .ecz 0.75x the int8 route's, 0.182x the fp32 file).
"""

from __future__ import annotations

from edgecompress.core.errors import UserError
from edgecompress.techniques.distill import Distill
from edgecompress.techniques.distill.budget import with_distill_seconds
from edgecompress.techniques.prune.config import SparseGPT
from edgecompress.techniques.prune.patterns import NM
from edgecompress.techniques.quantize.config import Qat, QuantizeDynamic, QuantizeInt4
from edgecompress.techniques.stage import StageConfig
from edgecompress.techniques.transformer.config import RemoveFfn, RemoveHeads, RemoveLayers

TIED_OUTPUT = "*lm_head"  # the output layer, the token table read again: kept out of the ternary grid

ROUTES: dict[str, tuple[StageConfig, ...]] = {
    "int8": (QuantizeDynamic(embedding_bits=8, embedding_block_size=128),),
    "int4": (QuantizeInt4(block_size=32, rounding="gptq", embedding_bits=4, embedding_block_size=32),),
    "ternary": (
        Qat(bits="ternary", ternary_rule="absmean", epochs=1, lr=1e-3, distill=1.0, keep=(TIED_OUTPUT,)),
        Distill(seconds=300, epochs=8, lr=1e-3),
        QuantizeDynamic(embedding_bits=4, embedding_block_size=32),
    ),
    "structured": (
        RemoveHeads(fraction=0.33),  # 1 of every 3 query heads sharing a key/value head: the cache is unchanged
        RemoveFfn(fraction=0.75),
        RemoveLayers(count=2),  # the two with the lowest block influence
        Distill(seconds=300, epochs=8, lr=1e-3),
        QuantizeDynamic(embedding_bits=8, embedding_block_size=128),
    ),
    "sparse24": (
        SparseGPT(pattern=NM(2, 4)),
        Distill(seconds=300, epochs=8, lr=3e-4),  # benchmarks/lm.py's "SparseGPT 2:4 + distillation"
        QuantizeDynamic(embedding_bits=8, embedding_block_size=128),
    ),
}


def route_stages(route: str, distill_seconds: float | None = None) -> list[StageConfig]:
    """A route's stages, with its distillation budget changed (0: no distillation; routes that distill only).

    >>> [s.stage for s in route_stages("int4")]
    ['quantize']
    >>> [s.stage for s in route_stages("ternary", distill_seconds=60)]
    ['qat', 'distill', 'quantize']
    """
    if route not in ROUTES:
        raise UserError(f"route: unknown route {route!r}; choose one of {', '.join(ROUTES)}")
    return list(ROUTES[route]) if distill_seconds is None else with_distill_seconds(ROUTES, route, distill_seconds)
