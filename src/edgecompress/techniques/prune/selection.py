"""Which layers a pruning run touches: name patterns, layer types, and the classifier kept by default."""

from __future__ import annotations

import fnmatch

from torch import nn

from edgecompress.core.errors import UserError
from edgecompress.core.measure.params import is_parametrization_internal

LAYER_TYPES: dict[str, type[nn.Module]] = {
    "Linear": nn.Linear,
    "Conv1d": nn.Conv1d,
    "Conv2d": nn.Conv2d,
    "Conv3d": nn.Conv3d,
}


def classifier_name(model: nn.Module) -> str | None:
    """The last Linear/conv registered: its outputs are the model's outputs, so pruning it is opt-in."""
    names = [n for n, m in model.named_modules() if isinstance(m, tuple(LAYER_TYPES.values()))]
    return names[-1] if names else None


def select_layers(
    model: nn.Module,
    layers: tuple[str, ...] = ("*",),
    types: tuple[str, ...] = ("Linear", "Conv1d", "Conv2d", "Conv3d"),
    keep: tuple[str, ...] = (),
    keep_classifier: bool = True,
) -> dict[str, nn.Module]:
    """Layers whose name matches a `layers` pattern and whose type is in `types`, minus `keep` and the classifier.

    >>> from edgecompress.core.models import DigitsCNN
    >>> list(select_layers(DigitsCNN(), layers=("conv*", "fc*")))
    ['conv1', 'conv2', 'fc1']
    """
    unknown = [t for t in types if t not in LAYER_TYPES]
    if unknown:
        raise UserError(f"prune.types: unknown layer type {unknown[0]!r}; allowed: {', '.join(LAYER_TYPES)}")
    wanted = tuple(LAYER_TYPES[t] for t in types)
    candidates = {
        n: m for n, m in model.named_modules() if n and not is_parametrization_internal(n) and isinstance(m, wanted)
    }
    for pattern in (*layers, *keep):
        if not any(fnmatch.fnmatch(n, pattern) for n in candidates):
            available = ", ".join(candidates) or "none"
            raise UserError(f"prune.layers: pattern {pattern!r} matches no {'/'.join(types)} layer; layers are: {available}")
    classifier = classifier_name(model) if keep_classifier else None
    selected = {
        n: m
        for n, m in candidates.items()
        if any(fnmatch.fnmatch(n, p) for p in layers) and not any(fnmatch.fnmatch(n, p) for p in keep) and n != classifier
    }
    if not selected:
        raise UserError(
            "prune.layers: no layer left to prune after prune.keep and the kept classifier "
            f"({classifier}); set keep_classifier: false or widen prune.layers"
        )
    return selected
