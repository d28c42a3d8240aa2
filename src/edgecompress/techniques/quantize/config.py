"""Quantization stage configs: one class per mode, each with only the fields that mode uses.

`Quantize(mode=..., **fields)` builds the class of that mode, so `Quantize(mode="dynamic")` is a
`QuantizeDynamic`, and the YAML spelling `{stage: quantize, mode: dynamic}` means the same thing. A field of
another mode is refused by name ("calibration applies to mode static only, not dynamic").

>>> Quantize(mode="int4", block_size=64)
QuantizeInt4(stage='quantize', mode='int4', block_size=64)
>>> isinstance(QuantizeDynamic(), Quantize)
True
"""

from __future__ import annotations

from typing import Annotated, Literal, Optional, Union

from pydantic import AfterValidator, Field, model_validator

from edgecompress.techniques.config import StageConfig


def _power_of_two(value: int) -> int:
    if value & (value - 1):  # ONNX Runtime's block formats (MatMulNBits, blocked Gather) take powers of two only
        raise ValueError(f"must be a power of two (16, 32, 64, ...), got {value}")
    return value


PowerOfTwo = Annotated[int, AfterValidator(_power_of_two)]


class Quantize(StageConfig):
    """Quantization in ONNX Runtime; the stage's output is an ONNX file, so it comes last.

    `Quantize(mode=...)` with mode static (the default), dynamic, fp16 or int4 returns that mode's config:
    `QuantizeStatic`, `QuantizeDynamic`, `CastFp16`, `QuantizeInt4`.

    >>> Quantize(mode="dynamic").per_channel
    True
    """

    stage: Literal["quantize"] = "quantize"

    def __new__(cls, *args, **fields):
        if cls is not Quantize:
            return super().__new__(cls)
        modes, mode = quantize_modes(), fields.get("mode", "static")
        if mode not in modes:
            raise ValueError(f"quantize.mode: got {mode!r}; choose one of {', '.join(modes)}")
        return modes[mode](**fields)  # Python then calls __init__ with the same fields: validated again

    @model_validator(mode="before")
    @classmethod
    def _fields_fit_the_mode(cls, data):
        if isinstance(data, dict):
            mode = data.get("mode", "static")
            for key in data:
                if key in cls.model_fields:
                    continue
                owners = [m for m, config in quantize_modes().items() if key in config.model_fields]
                if owners:
                    raise ValueError(f"{key} applies to mode {' and '.join(owners)} only, not {mode}")
        return data

    @property
    def leaves_torch(self) -> bool:
        return True


class _Int8(Quantize):
    """Fields of both int8 modes."""

    per_channel: bool = Field(True, description="weight scales per output channel (else one per tensor)")
    keep_float: tuple[str, ...] = Field((), description="fnmatch patterns of layers left in float")
    tolerance: Optional[float] = Field(
        None, ge=0.0, description="largest allowed metric drop; the most sensitive layers stay float until met"
    )


class QuantizeStatic(_Int8):
    """int8 weights and activations, activation ranges calibrated on training batches; the right choice for
    convolutions, which ONNX Runtime runs as fused integer kernels.

    `calibration`: minmax, percentile, entropy, or mse (the range with the least squared rounding + clipping
    error). Layers matching `keep_float` stay in float; with `tolerance`, the layers with the lowest
    simulated-int8 SQNR are also kept in float, one at a time, until the metric (on validation data) drops by
    at most `tolerance`. Every int8 artifact is checked to compute exactly on the run's target CPU class.

    >>> QuantizeStatic(calibration="mse").format
    'qoperator'
    """

    mode: Literal["static"] = "static"
    calibration: Literal["minmax", "percentile", "entropy", "mse"] = "minmax"
    calibration_batches: int = Field(16, ge=1)
    format: Literal["qoperator", "qdq"] = Field("qoperator", description="graph format (see quantize/onnx_static.py)")


class QuantizeDynamic(_Int8):
    """int8 weights, activations quantized per call (MatMul/Gemm only); for MLPs and transformers.

    Transformers' activations have a few outlier channels that ruin a per-tensor int8 range:
    `smooth_outliers` scales that many of each MatMul input's largest channels down and the weights' rows
    up (same function in float, `quantize/outlier_smoothing.py`). `rounding` gptq rounds the weights with
    GPTQ on the calibration inputs instead of to nearest (`quantize/gptq.py`). `keep_worst` leaves that many
    weight MatMuls in float: those whose simulated int8 output has the lowest SQNR on the calibration inputs.
    `embedding_bits` stores large embedding tables (Gather) as int8 or int4 in blocks of a row. Each of these
    reads the first `calibration_batches` training batches; plain dynamic int8 needs no data.

    >>> QuantizeDynamic(per_channel=False).mode
    'dynamic'
    >>> QuantizeDynamic(smooth_outliers=8, rounding="gptq", embedding_bits=8).rounding
    'gptq'
    """

    mode: Literal["dynamic"] = "dynamic"
    smooth_outliers: int = Field(0, ge=0, le=4096, description="activation channels per MatMul input scaled into the weights")
    rounding: Literal["nearest", "gptq"] = Field("nearest", description="how weights are rounded onto the int8 grid")
    keep_worst: int = Field(0, ge=0, le=100_000, description="this many weight MatMuls with the lowest int8 SQNR stay in float")
    calibration_batches: int = Field(8, ge=1, le=100_000, description="training batches read by the options above")
    embedding_bits: Optional[Literal[4, 8]] = Field(None, description="store large embedding tables in this many bits")
    embedding_block_size: PowerOfTwo = Field(128, ge=16, le=65536, description="table values per scale, a power of two")


class CastFp16(Quantize):
    """Weights and compute in float16: half the size; slower on CPUs without fp16 units (FINDINGS sec. 2).

    >>> CastFp16().mode
    'fp16'
    """

    mode: Literal["fp16"] = "fp16"


class QuantizeInt4(Quantize):
    """Weight-only 4-bit in blocks of `block_size` weights per scale (ONNX Runtime's MatMulNBits); Linear layers
    only. `rounding` gptq re-rounds the weights on the same grid with GPTQ over the first `calibration_batches`
    training inputs (`quantize/onnx_gptq.py`). `accuracy_level` is the kernel's compute type: 0 (float32) or 4
    (activations quantized to int8 per block). `embedding_bits` also stores large embedding tables (Gather) in
    4 or 8 bits, in blocks of a row. After `block_qat` with the same sizes the stored weights are exactly the
    trained ones.

    >>> QuantizeInt4(block_size=128, rounding="gptq").rounding
    'gptq'
    """

    mode: Literal["int4"] = "int4"
    block_size: PowerOfTwo = Field(32, ge=16, le=4096, description="weights per scale, a power of two")
    rounding: Literal["nearest", "gptq"] = Field("nearest", description="how weights are rounded onto the 4-bit grid")
    calibration_batches: int = Field(8, ge=1, le=100_000, description="training batches GPTQ's Hessians are taken over")
    accuracy_level: Literal[0, 4] = Field(4, description="MatMulNBits compute: 0 float32, 4 int8 activations")
    embedding_bits: Optional[Literal[4, 8]] = Field(None, description="store large embedding tables in this many bits")
    embedding_block_size: PowerOfTwo = Field(64, ge=16, le=65536, description="table values per scale, a power of two")



def quantize_modes() -> dict[str, type[Quantize]]:
    """Every mode by name: the subclasses of `Quantize` that set `mode`, so a new mode is just its class."""
    found, todo = {}, list(Quantize.__subclasses__())
    while todo:
        config = todo.pop(0)
        todo.extend(config.__subclasses__())
        if "mode" in config.model_fields:
            found[config.model_fields["mode"].default] = config
    return found


class Qat(StageConfig):
    """Quantization-aware training: fine-tune with weights fake-quantized to `bits` (2-8) or "ternary".

    Follow it with `quantize` (static int8) to ship: the trained grid survives int8 almost exactly, and the
    packed .ecz file stores the weights at about `bits` each.

    >>> Qat(bits=4, epochs=16).bits
    4
    """

    stage: Literal["qat"] = "qat"
    bits: Union[int, Literal["ternary"]] = 4
    epochs: int = Field(16, ge=1, le=10_000)
    lr: float = Field(1e-3, gt=0.0, le=10.0)
    distill: float = Field(0.5, ge=0.0, le=1.0, description="weight of distillation from the unquantized baseline")
    layers: tuple[str, ...] = Field(("*",), description="fnmatch patterns of layers to quantize")
    keep: tuple[str, ...] = Field((), description="fnmatch patterns of layers left in full precision")
    ternary_rule: Literal["twn", "absmean"] = Field("twn", description="ternary only: Ternary Weight Networks' threshold rule or BitNet b1.58's absmean")

    @model_validator(mode="after")
    def _bits_in_range(self):
        if self.bits != "ternary" and not 2 <= self.bits <= 8:
            raise ValueError(f"bits must be from 2 to 8 or 'ternary', got {self.bits}")
        if self.bits != "ternary" and self.ternary_rule != "twn":
            raise ValueError("ternary_rule applies to bits ternary only")
        return self

    @property
    def needs_labels(self) -> bool:
        return True


class BlockQat(StageConfig):
    """Put every Linear weight on ONNX Runtime's int4 block grid (MatMulNBits) and the large embedding tables on
    their `embedding_bits` grid, straight-through (`quantize/block_qat.py`). Training stages that follow
    (`distill`, `finetune`) learn on the grid, and `quantize` mode int4 with the same sizes then stores exactly
    the trained weights. The tables are put on their grid once and stay fixed.

    >>> BlockQat(block_size=64).stage
    'block_qat'
    """

    stage: Literal["block_qat"] = "block_qat"
    block_size: PowerOfTwo = Field(32, ge=16, le=4096, description="Linear weights per scale, a power of two")
    embedding_bits: Literal[4, 8] = Field(4, description="bits of the embedding tables' grid")
    embedding_block_size: PowerOfTwo = Field(64, ge=16, le=65536, description="table values per scale, a power of two")
