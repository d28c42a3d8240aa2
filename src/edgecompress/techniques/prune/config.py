"""The configs of the prune package's stages (pydantic only: the recipe schema loads them without torch):
`Prune`, a criterion x pattern x scope x schedule combination, each part typed; and `SparseGPT`.

The flat spelling of earlier recipes still loads: `pattern: nm, n: 2, m: 4` becomes `pattern=NM(2, 4)`,
`criterion: l1` becomes `Magnitude(norm=1)`, `criterion: custom, masks: m.safetensors` becomes
`OwnMasks(file="m.safetensors")`. The nested spelling is `pattern: {kind: nm, n: 2, m: 4}`.

>>> Prune(pattern="nm", n=2, m=4).pattern
NM(kind='nm', n=2, m=4)
>>> Prune(pattern=Blocks(8, 8), criterion=Wanda(), amount=0.9).criterion.kind
'wanda'
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, Field, model_validator

from edgecompress.techniques.config import StageConfig
from edgecompress.techniques.prune.criteria import CriterionConfig, Custom, Magnitude, Movement, OwnMasks, Random, Taylor, Wanda
from edgecompress.techniques.prune.patterns import NM, Blocks, Channels, Unstructured

AnyPattern = Annotated[Union[Unstructured, Channels, Blocks, NM], Field(discriminator="kind")]
AnyCriterion = Annotated[Union[Magnitude, Random, Taylor, Wanda, Movement, Custom, OwnMasks], Field(discriminator="kind")]

# The flat spelling: pattern name -> the flat fields that belong to it, as the typed pattern's fields.
_FLAT_PATTERN_FIELDS = {"nm": ("n", "m"), "block": ("block",), "channel": ("round_to",), "unstructured": ()}
_FLAT_DEFAULTS = {"n": 2, "m": 4, "block": (8, 8), "round_to": None, "score_fn": None, "masks": None}


class Prune(StageConfig):
    """Prune weights: a criterion x pattern x scope x schedule combination.

    - criterion: `Magnitude(norm=2)` (default), `Taylor()`, `Wanda()`, `Movement()` (needs training),
      `Random()` (the control), `Custom(score_fn="module:function")` or a Python callable
      `fn(name, module) -> scores`, or `OwnMasks(file=...)` (masks as given);
    - pattern: `Channels(round_to=None)` (default; physically removed with Torch-Pruning), `Unstructured()`,
      `Blocks(rows, cols)`, `NM(n, m)` (keep n of every m consecutive weights);
    - scope: layer (each layer loses `amount`), global (`amount` of all selected weights/groups) or row (each
      output row loses `amount`, as Wanda compares weights in language models);
    - schedule: oneshot, iterative (`steps` rounds of prune then fine-tune `epochs`), gradual (Zhu & Gupta's
      cubic schedule, `steps` mask updates during `epochs` of training).
    Masks stay on the model, so later fine-tuning keeps pruned weights at zero. Combinations that make no
    sense (Wanda on channels, N:M with global scope, movement in one shot...) are refused when built.

    >>> Prune(pattern=Unstructured(), amount=0.9, scope="global", schedule="gradual").amount
    0.9
    """

    stage: Literal["prune"] = "prune"
    pattern: AnyPattern = Field(default_factory=Channels)
    criterion: AnyCriterion = Field(default_factory=Magnitude)
    amount: float = Field(0.5, ge=0.0, lt=1.0, description="fraction removed (sparsity)")
    scope: Literal["layer", "global", "row"] = "layer"
    schedule: Literal["oneshot", "iterative", "gradual"] = "oneshot"
    steps: int = Field(4, ge=1, le=1000, description="iterative rounds, or gradual mask updates")
    epochs: int = Field(8, ge=1, le=10_000, description="training epochs per iterative round, or in all for gradual")
    lr: float = Field(1e-3, gt=0.0, le=10.0)
    distill: float = Field(0.0, ge=0.0, le=1.0, description="weight of distillation from the unpruned model")
    layers: tuple[str, ...] = Field(("*",), description="fnmatch patterns of layer names to prune")
    types: tuple[str, ...] = Field(
        ("Linear", "Conv1d", "Conv2d", "Conv3d", "GRU", "LSTM", "RNN"),
        description="layer types to prune; a GRU/LSTM/RNN as its weight matrices, or its hidden units (pattern channel)",
    )
    keep: tuple[str, ...] = Field((), description="fnmatch patterns of layer names left unpruned")
    keep_classifier: bool = True
    per_layer: dict[str, float] = Field(default_factory=dict, description="amount by layer-name pattern")
    calibration_batches: int = Field(8, ge=1, description="batches for taylor and wanda scores")

    @model_validator(mode="before")
    @classmethod
    def _flat_spelling(cls, data):
        """`pattern: nm, n: 2, m: 4` and `criterion: l1` (the first recipes' spelling) -> typed objects."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        flat = {key: data.pop(key) for key in _FLAT_DEFAULTS if key in data}
        pattern = data.get("pattern", "channel")
        if isinstance(pattern, str):
            owned = _FLAT_PATTERN_FIELDS.get(pattern, ())
            typed = {"kind": pattern}
            for key in owned:
                if key in flat and key == "block":
                    typed["rows"], typed["cols"] = _pair(flat.pop(key))
                elif key in flat:
                    typed[key] = flat.pop(key)
            data["pattern"] = typed
        criterion = data.get("criterion")
        if isinstance(criterion, str):
            data["criterion"] = _flat_criterion(criterion, flat)
        elif isinstance(criterion, type) and issubclass(criterion, CriterionConfig):
            data["criterion"] = criterion()  # `criterion=Wanda` means Wanda()
        elif callable(criterion) and not isinstance(criterion, (type, BaseModel)):
            data["criterion"] = Custom(fn=criterion)
        # a flat field left at its default fits any pattern (a serialized recipe spells out every field)
        wrong = [key for key, value in flat.items() if _normal(value) != _normal(_FLAT_DEFAULTS[key])]
        if wrong:
            owner = {"n": "pattern nm", "m": "pattern nm", "block": "pattern block", "round_to": "pattern channel",
                     "score_fn": "criterion custom", "masks": "criterion custom"}[wrong[0]]
            raise ValueError(f"{wrong[0]} applies to {owner} only")
        return data

    @model_validator(mode="after")
    def _sensible_combination(self):
        problems = list(self.pattern.problems(self))
        if self.criterion.needs_training and self.schedule == "oneshot":
            problems.append(f"criterion {self.criterion.kind} needs training to score weights; use schedule gradual or iterative")
        if isinstance(self.criterion, OwnMasks) and (not isinstance(self.pattern, Unstructured) or self.schedule != "oneshot"):
            problems.append("masks are applied as given: use pattern unstructured and schedule oneshot")
        if self.per_layer and self.scope == "global":
            problems.append("per_layer amounts need scope layer")
        bad = {k: v for k, v in self.per_layer.items() if not 0.0 <= v < 1.0}
        if bad:
            problems.append(f"per_layer amounts must be in [0, 1), got {bad}")
        if problems:
            raise ValueError("; ".join(dict.fromkeys(problems)))
        return self


def _flat_criterion(name: str, flat: dict) -> dict:
    if name in ("l1", "l2"):
        return {"kind": "magnitude", "norm": int(name[1])}
    if name == "custom":
        score_fn, masks = flat.pop("score_fn", None), flat.pop("masks", None)
        if masks is not None and score_fn is None:
            return {"kind": "masks", "file": masks}
        if masks is not None:
            raise ValueError("criterion custom needs exactly one of score_fn (module:function) or masks (a .safetensors file)")
        return {"kind": "custom", "score_fn": score_fn}
    return {"kind": name}


def _pair(value):
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return value[0], value[1]
    raise ValueError(f"block must be two sides, rows x cols, got {value!r}")


def _normal(value):
    return tuple(value) if isinstance(value, list) else value


class SparseGPT(StageConfig):
    """One-shot pruning of Linear layers with OBS weight updates from calibration data (SparseGPT).

    `pattern` is `Unstructured()` (remove `amount` of each layer) or `NM(n, m)` (keep n of every m; the amount
    is 1 - n/m). `block_size` columns are pruned together; `damp` (a fraction of the mean diagonal of H) keeps
    the Hessian invertible.

    >>> SparseGPT(pattern=NM(2, 4), layers=("fc1",)).pattern.m
    4
    """

    stage: Literal["sparsegpt"] = "sparsegpt"
    pattern: Annotated[Union[Unstructured, NM], Field(discriminator="kind")] = Field(default_factory=Unstructured)
    amount: float = Field(0.5, ge=0.0, lt=1.0, description="fraction removed per layer (pattern unstructured)")
    layers: tuple[str, ...] = Field(("*",), description="fnmatch patterns of Linear layer names to prune")
    keep: tuple[str, ...] = Field((), description="fnmatch patterns of layer names left unpruned")
    keep_classifier: bool = True
    calibration_batches: int = Field(16, ge=1, le=100_000, description="training batches the Hessians are taken over")
    block_size: int = Field(128, ge=1, le=65536, description="columns pruned together")
    damp: float = Field(0.01, gt=0.0, le=1.0, description="added to H's diagonal, as a fraction of its mean")

    @model_validator(mode="after")
    def _amount_fits_the_pattern(self):
        if isinstance(self.pattern, NM) and self.amount != 0.5 and abs(self.amount - self.pattern.amount) > 1e-9:
            raise ValueError(f"amount is fixed at 1 - n/m = {self.pattern.amount:g} for pattern nm; leave it out")
        return self
