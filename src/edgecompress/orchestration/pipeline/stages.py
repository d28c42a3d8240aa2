"""Stage configs: small frozen objects that say what a stage does, validated when they are built.

A recipe is a list of these; the YAML recipe (a later issue) is just their serialized form. Each config type
maps to one handler in `pipeline.handlers`.
"""

from __future__ import annotations

from typing import Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator


class StageConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)  # NaN and Inf are never settings

    @property
    def name(self) -> str:
        return self.stage  # type: ignore[attr-defined]

    @property
    def leaves_torch(self) -> bool:
        """True when the stage's output is ONNX only, so torch stages cannot follow it."""
        return False


def _default(config: BaseModel, name: str):
    info = type(config).model_fields[name]
    return info.get_default(call_default_factory=True)


class Prune(StageConfig):
    """Prune weights: a criterion x pattern x scope x schedule combination.

    - criterion: l1, l2 (magnitude), taylor (|w * grad|), wanda (|w| x input norm), movement (needs training),
      random (the control), custom (`score_fn` = "module:function" returning scores, or `masks` = a
      safetensors file of 0/1 masks by layer name);
    - pattern: unstructured, channel (physically removed with Torch-Pruning; `round_to` = 8 keeps channel
      counts multiples of 8, which CPU convolution kernels need to stay fast), block (`block` = rows x cols of
      the weight matrix), nm (keep `n` of every `m` consecutive weights);
    - scope: layer (each layer loses `amount`) or global (`amount` of all selected weights/groups);
    - schedule: oneshot, iterative (`steps` rounds of prune then fine-tune `epochs`), gradual (Zhu & Gupta's
      cubic schedule, `steps` mask updates during `epochs` of training).
    Masks stay on the model, so later fine-tuning keeps pruned weights at zero.

    >>> Prune(pattern="unstructured", amount=0.9, scope="global", schedule="gradual").amount
    0.9
    """

    stage: Literal["prune"] = "prune"
    pattern: Literal["unstructured", "channel", "block", "nm"] = "channel"
    criterion: Literal["l1", "l2", "taylor", "wanda", "movement", "random", "custom"] = "l2"
    amount: float = Field(0.5, ge=0.0, lt=1.0, description="fraction removed (sparsity)")
    scope: Literal["layer", "global"] = "layer"
    schedule: Literal["oneshot", "iterative", "gradual"] = "oneshot"
    steps: int = Field(4, ge=1, le=1000, description="iterative rounds, or gradual mask updates")
    epochs: int = Field(8, ge=1, le=10_000, description="training epochs per iterative round, or in all for gradual")
    lr: float = Field(1e-3, gt=0.0, le=10.0)
    distill: float = Field(0.0, ge=0.0, le=1.0, description="weight of distillation from the unpruned model")
    block: tuple[int, int] = (8, 8)
    n: int = Field(2, ge=1)
    m: int = Field(4, ge=2)
    layers: tuple[str, ...] = Field(("*",), description="fnmatch patterns of layer names to prune")
    types: tuple[str, ...] = ("Linear", "Conv1d", "Conv2d", "Conv3d")
    keep: tuple[str, ...] = Field((), description="fnmatch patterns of layer names left unpruned")
    keep_classifier: bool = True
    per_layer: dict[str, float] = Field(default_factory=dict, description="amount by layer-name pattern")
    calibration_batches: int = Field(8, ge=1, description="batches for taylor and wanda scores")
    score_fn: Optional[str] = None
    masks: Optional[str] = None
    round_to: Optional[int] = Field(
        None, ge=1, le=1024,
        description="channel pattern, scope layer: each layer keeps the largest multiple of this many channels within its amount, at least one (8 keeps CPU kernels on their fast path)",
    )

    @model_validator(mode="after")
    def _sensible_combination(self):
        problems = []
        if self.pattern == "nm":
            if self.n >= self.m:
                problems.append(f"n must be smaller than m for N:M sparsity, got {self.n}:{self.m}")
            if self.amount != _default(self, "amount") and abs(self.amount - (1 - self.n / self.m)) > 1e-9:
                problems.append(f"amount is fixed at 1 - n/m = {1 - self.n / self.m:g} for pattern nm; leave it out")
            if self.scope == "global":
                problems.append("scope global does not apply to pattern nm (every group of m keeps n)")
        if self.pattern == "channel":
            if self.criterion not in ("l1", "l2", "taylor", "random"):
                problems.append(f"criterion {self.criterion} does not apply to pattern channel; use l1, l2, taylor or random")
            if self.schedule == "gradual":
                problems.append("schedule gradual does not apply to pattern channel (shapes change); use iterative")
        if self.round_to is not None and (self.pattern != "channel" or self.scope == "global"):
            problems.append("round_to only applies to pattern channel with scope layer")
        if self.block[0] < 1 or self.block[1] < 1:
            problems.append(f"block sides must be positive, got {self.block}")
        if self.criterion == "movement" and self.schedule == "oneshot":
            problems.append("criterion movement needs training to score weights; use schedule gradual or iterative")
        if self.criterion == "custom" and (self.score_fn is None) == (self.masks is None):
            problems.append("criterion custom needs exactly one of score_fn (module:function) or masks (a .safetensors file)")
        if self.criterion != "custom" and (self.score_fn or self.masks):
            problems.append("score_fn and masks are only used with criterion custom")
        if self.masks is not None and (self.pattern != "unstructured" or self.schedule != "oneshot"):
            problems.append("masks are applied as given: use pattern unstructured and schedule oneshot")
        if self.per_layer and self.scope == "global":
            problems.append("per_layer amounts need scope layer")
        bad = {k: v for k, v in self.per_layer.items() if not 0.0 <= v < 1.0}
        if bad:
            problems.append(f"per_layer amounts must be in [0, 1), got {bad}")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class Finetune(StageConfig):
    """Train the compressed model on the task's training data to recover its metric.

    `distill` > 0 mixes in distillation from the uncompressed baseline (the teacher) with that weight.

    >>> Finetune(epochs=24, lr=2e-3, distill=0.5).epochs
    24
    """

    stage: Literal["finetune"] = "finetune"
    epochs: int = Field(24, ge=1, le=10_000)
    lr: float = Field(2e-3, gt=0.0, le=10.0)
    weight_decay: float = Field(0.0, ge=0.0, le=1.0, description="L2 penalty added to the gradients (Adam)")
    distill: float = Field(0.0, ge=0.0, le=1.0, description="weight of the distillation loss")
    temperature: float = Field(4.0, ge=0.1, le=100.0, description="softens both models' outputs in the distillation loss")


class Quantize(StageConfig):
    """Quantization in ONNX Runtime.

    - static: int8 with activation ranges calibrated on training batches (`calibration`: minmax, percentile,
      entropy, or mse: the range with the least squared rounding + clipping error); the right choice for
      convolutions, which ONNX Runtime runs as fused integer kernels.
    - dynamic: int8 weights, activations quantized per call (MatMul/Gemm only, no calibration data); for
      MLPs and transformers.
    - fp16: weights and compute in float16 (half the size; slower on CPUs without fp16 units).
    - int4: weight-only 4-bit in blocks of `block_size` (MatMulNBits); Linear layers only.
    Weights are symmetric int8, per output channel unless `per_channel` is false. Layers matching
    `keep_float` stay in float; with `tolerance`, the layers with the lowest simulated-int8 SQNR are also kept
    in float, one at a time, until the metric (on validation data) drops by at most `tolerance`.

    >>> Quantize(mode="dynamic").per_channel
    True
    """

    stage: Literal["quantize"] = "quantize"
    mode: Literal["static", "dynamic", "fp16", "int4"] = "static"
    per_channel: bool = True
    calibration: Literal["minmax", "percentile", "entropy", "mse"] = "minmax"
    calibration_batches: int = Field(16, ge=1)
    format: Literal["qoperator", "qdq"] = Field("qoperator", description="static graph format (see quantize/onnx_static.py)")
    keep_float: tuple[str, ...] = Field((), description="fnmatch patterns of layers left in float")
    tolerance: Optional[float] = Field(
        None, ge=0.0, description="largest allowed metric drop; the most sensitive layers stay float until met"
    )
    block_size: int = Field(32, ge=16, le=4096, description="int4 only: weights per scale, a power of two")

    @model_validator(mode="after")
    def _fields_fit_the_mode(self):
        if self.block_size & (self.block_size - 1):  # ONNX Runtime's MatMulNBits takes powers of two only
            raise ValueError(f"block_size must be a power of two (16, 32, ..., 4096), got {self.block_size}")
        applies = {
            "calibration": ("static",), "calibration_batches": ("static",), "format": ("static",),
            "per_channel": ("static", "dynamic"), "keep_float": ("static", "dynamic"), "tolerance": ("static", "dynamic"),
            "block_size": ("int4",),
        }
        # a field left at its default is fine in any mode (a serialized recipe spells out every field)
        changed = [f for f in applies if getattr(self, f) != _default(self, f)]
        wrong = [f for f in changed if self.mode not in applies[f]]
        if wrong:
            modes = " and ".join(applies[wrong[0]])
            raise ValueError(f"{wrong[0]} applies to mode {modes} only, not {self.mode}")
        return self

    @property
    def leaves_torch(self) -> bool:
        return True


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


class Factorize(StageConfig):
    """Low-rank factorization by truncated SVD: a Linear becomes two thin Linears; with `convs`, a KxK
    convolution becomes a thin KxK convolution then a 1x1 one (`lowrank/conv.py`).

    `keep` keeps that fraction of the chosen layers' parameters (met within 1% over all of them); `energy` instead keeps the smallest rank holding
    that fraction of the squared singular values. Follow it with `finetune` to recover.

    >>> Factorize(keep=0.25).keep
    0.25
    """

    stage: Literal["factorize"] = "factorize"
    keep: Optional[float] = Field(0.5, gt=0.0, lt=1.0, description="fraction of each layer's parameters kept")
    energy: Optional[float] = Field(None, gt=0.0, lt=1.0, description="fraction of spectral energy kept")
    layers: tuple[str, ...] = Field(("*",), description="fnmatch patterns of layers to factorize")
    keep_classifier: bool = True
    convs: bool = Field(False, description="also factorize ungrouped Conv2d layers (two thinner convolutions)")

    @model_validator(mode="after")
    def _one_rank_rule(self):
        if self.energy is not None and self.keep != _default(self, "keep") and self.keep is not None:
            raise ValueError("give keep or energy, not both")
        return self


AnyStage = Union[Prune, Finetune, Factorize, Qat, Quantize]


def default_recipe() -> list[StageConfig]:
    """The demo's recipe: remove half the channels, fine-tune with distillation, train the weights onto a ternary
    grid, then static int8. Ternary weights are what makes the packed file >= 40x smaller (1.6 bits a weight);
    the first and last layers (784 weights) stay int8, as in most ternary networks. Measured at seeds 0-4, the
    int8 file is at most 0.28 points below the baseline (BitNet's absmean rule, all layers but the classifier
    ternary, lr 1e-3, lost up to 1.39)."""
    return [
        Prune(amount=0.5, criterion="l2"),
        Finetune(epochs=24, lr=2e-3, distill=0.5),
        Qat(bits="ternary", epochs=16, lr=2e-3, distill=0.5, keep=("conv1", "fc2")),
        Quantize(),
    ]
