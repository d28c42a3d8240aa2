"""What to do to a sentence encoder: one validated settings object; the named routes are presets of it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from edgecompress.core.errors import UserError


class EncoderRecipe(BaseModel):
    """Structured removal, then distillation, then quantization; each step optional.

    >>> EncoderRecipe(ffn_fraction=0.5, distill_seconds=240)  # the structured route
    EncoderRecipe(ffn_fraction=0.5, head_fraction=0.0, quantize='none', distill_seconds=240.0, ...)
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    ffn_fraction: float = Field(0.0, ge=0.0, lt=1.0, description="share of FFN neurons removed in every layer")
    head_fraction: float = Field(0.0, ge=0.0, lt=1.0, description="share of attention heads removed in every layer")
    quantize: Literal["none", "int8", "int4"] = "none"
    distill_seconds: float = Field(0.0, ge=0.0, le=7 * 24 * 3600, description="time budget for distillation to the original (0: none)")
    distill_epochs: int = Field(3, ge=1, description="at most this many passes over the training sentences")
    outlier_channels: int = Field(8, ge=0, description="int8: activation channels smoothed into the weights")
    train_sentences: int = Field(4000, ge=32, description="unlabelled sentences for distillation")
    calibration_sentences: int = Field(256, ge=32, description="sentences for activation ranges and importance")
    keep_float: int = Field(0, ge=0, description="int8: this many MatMuls with the worst int8 error stay fp32")

    @model_validator(mode="after")
    def _keep_float_needs_int8(self):
        if self.keep_float and self.quantize != "int8":
            raise ValueError(f"keep_float applies to quantize int8 only, not {self.quantize}")
        return self


# The distilled routes train on 6,000 sentences for up to 8 epochs: on 2 cores the 240 s budget ends them
# first (about 3 epochs), so how far they get depends on the machine. Give a budget the epochs fit in for a
# bit-reproducible run. Wanda importance from 1,024 sentences ranks FFN neurons better than from 256.
_DISTILLED = dict(distill_seconds=240, distill_epochs=8, train_sentences=6000, calibration_sentences=1024)
ROUTES: dict[str, EncoderRecipe] = {
    "int8": EncoderRecipe(quantize="int8"),
    "int4": EncoderRecipe(quantize="int4", **_DISTILLED),
    "structured": EncoderRecipe(ffn_fraction=0.5, **_DISTILLED),
}


def route_recipe(route: str, **overrides) -> EncoderRecipe:
    """A named route with some settings changed; every error names the setting."""
    if route not in ROUTES:
        raise UserError(f"route: unknown route {route!r}; choose one of {', '.join(ROUTES)}")
    from pydantic import ValidationError

    settings = {k: v for k, v in overrides.items() if v is not None}
    try:
        return EncoderRecipe(**{**ROUTES[route].model_dump(), **settings})
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']} (got {e.get('input')!r})" for e in exc.errors()]
        raise UserError("encoder recipe: " + "; ".join(problems)) from None
