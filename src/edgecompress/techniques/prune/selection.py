"""Which layers a pruning run touches: name patterns, layer types, and the classifier kept by default.

A GRU/LSTM/RNN is selected as its weight matrices, each a layer of its own (`gru.weight_ih_l0`, ...: see
`recurrent.py`); a pattern or keep entry matches either that name or the recurrent layer's own (`gru`).
"""

from __future__ import annotations

import fnmatch

from torch import nn

from edgecompress.core.errors import UserError
from edgecompress.core.measure.params import is_parametrization_internal
from edgecompress.techniques.prune.recurrent import RECURRENT_TYPES, recurrent_weights

LAYER_TYPES: dict[str, type[nn.Module]] = {
    "Linear": nn.Linear,
    "Conv1d": nn.Conv1d,
    "Conv2d": nn.Conv2d,
    "Conv3d": nn.Conv3d,
}
PRUNABLE_TYPES: dict[str, type[nn.Module]] = {**LAYER_TYPES, **RECURRENT_TYPES}


def classifier_name(model: nn.Module) -> str | None:
    """The last Linear/conv registered: its weights make the model's outputs, so pruning them is opt-in."""
    names = [n for n, m in model.named_modules() if isinstance(m, tuple(LAYER_TYPES.values()))]
    return names[-1] if names else None


def weight_owner(layer) -> tuple[nn.Module, str]:
    """(module, parameter name) holding a selected layer's weight: its own `weight`, or a recurrent weight matrix."""
    return getattr(layer, "owner", layer), getattr(layer, "param", "weight")


def select_layers(
    model: nn.Module,
    layers: tuple[str, ...] = ("*",),
    types: tuple[str, ...] = ("Linear", "Conv1d", "Conv2d", "Conv3d"),
    keep: tuple[str, ...] = (),
    keep_classifier: bool = True,
    removes_channels: bool = False,
    stage: str = "prune",
) -> dict[str, nn.Module]:
    """Layers whose name matches a `layers` pattern and whose type is in `types`, minus `keep` and the classifier.

    `removes_channels` (pattern channel) only shapes the advice when nothing is left: the model's output
    width is never cut, so the classifier alone cannot be channel-pruned. `stage` names the fields in errors.

    >>> from edgecompress.core.models import DigitsCNN
    >>> list(select_layers(DigitsCNN(), layers=("conv*", "fc*")))
    ['conv1', 'conv2', 'fc1']
    """
    unknown = [t for t in types if t not in PRUNABLE_TYPES]
    if unknown:
        raise UserError(f"{stage}.types: unknown layer type {unknown[0]!r}; allowed: {', '.join(PRUNABLE_TYPES)}")
    wanted = tuple(PRUNABLE_TYPES[t] for t in types)
    candidates, owners = {}, {}
    for n, m in model.named_modules():
        if not n or is_parametrization_internal(n) or not isinstance(m, wanted):
            continue
        parts = recurrent_weights(n, m) if isinstance(m, tuple(RECURRENT_TYPES.values())) else {n: m}
        candidates.update(parts)
        owners.update(dict.fromkeys(parts, n))

    def matches(name: str, pattern: str) -> bool:
        return fnmatch.fnmatch(name, pattern) or fnmatch.fnmatch(owners[name], pattern)

    for pattern in (*layers, *keep):
        if not any(matches(n, pattern) for n in candidates):
            available = ", ".join(dict.fromkeys(owners.values())) or "none"
            raise UserError(f"{stage}.layers: pattern {pattern!r} matches no {'/'.join(types)} layer; layers are: {available}")
    classifier = classifier_name(model) if keep_classifier else None
    selected = {
        n: m
        for n, m in candidates.items()
        if any(matches(n, p) for p in layers) and not any(matches(n, p) for p in keep) and n != classifier
    }
    if not selected:
        raise UserError(_nothing_left(model, layers, types, keep, classifier, removes_channels, stage))
    return selected


def _nothing_left(model, layers, types, keep, classifier, removes_channels, stage) -> str:
    """The refusal when no layer is left, suggesting only settings that would leave one (and would run)."""
    fixes = []
    if keep:
        fixes.append(f"remove patterns from {stage}.keep")
    if tuple(layers) != ("*",):
        fixes.append(f"widen {stage}.layers")
    missing = [t for t, cls in PRUNABLE_TYPES.items() if t not in types and any(isinstance(m, cls) for m in model.modules())]
    if missing:
        fixes.append(f"add {', '.join(missing)} to {stage}.types")
    if classifier and not removes_channels:
        fixes.append("set keep_classifier: false")
    if classifier and removes_channels:
        fixes.append("use pattern unstructured with keep_classifier: false (pattern channel never cuts the model's outputs)")
    kept = f" and the kept classifier ({classifier})" if classifier else ""
    conv1d = any(type(m).__name__ == "Conv1D" for m in model.modules())  # transformers' GPT-2 layers: not torch's
    why = "its layers are transformers' Conv1D (GPT-2 style), which is not supported" if conv1d else "the model has no prunable layer"
    left = "to prune" if stage == "prune" else f"for {stage}"
    return f"{stage}.layers: no layer left {left} after {stage}.keep{kept}; {' or '.join(fixes) if fixes and not conv1d else why}"
