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

from typing import Literal, Optional, Union

from pydantic import Field, field_validator, model_validator

from edgecompress.techniques.stage import StageConfig


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
    """int8 weights, activations quantized per call (MatMul/Gemm only, no calibration data); for MLPs and
    transformers.

    >>> QuantizeDynamic(per_channel=False).mode
    'dynamic'
    """

    mode: Literal["dynamic"] = "dynamic"


class CastFp16(Quantize):
    """Weights and compute in float16: half the size; slower on CPUs without fp16 units (FINDINGS sec. 2).

    >>> CastFp16().mode
    'fp16'
    """

    mode: Literal["fp16"] = "fp16"


class QuantizeInt4(Quantize):
    """Weight-only 4-bit in blocks of `block_size` weights per scale (ONNX Runtime's MatMulNBits); Linear layers only.

    >>> QuantizeInt4(block_size=128).block_size
    128
    """

    mode: Literal["int4"] = "int4"
    block_size: int = Field(32, ge=16, le=4096, description="weights per scale, a power of two")

    @field_validator("block_size")
    @classmethod
    def _power_of_two(cls, value: int) -> int:
        if value & (value - 1):  # ONNX Runtime's MatMulNBits takes powers of two only
            raise ValueError(f"block_size must be a power of two (16, 32, ..., 4096), got {value}")
        return value


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
