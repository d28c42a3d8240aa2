"""GRU, LSTM and RNN layers as prunable layers.

Masking patterns (unstructured, N:M, blocks) see each weight matrix of a recurrent layer as a layer of its own,
named `<layer>.weight_ih_l<k>` / `<layer>.weight_hh_l<k>` (`_reverse` for the second direction): a
`RecurrentWeight` gives criteria and patterns its `.weight`, and the mask goes on the recurrent module's
parameter, so fine-tuning holds it like any other mask.

The channel pattern removes hidden units, by hand rather than with Torch-Pruning, for two reasons measured on
torch-pruning 1.6 and torch 2.13 (CPU):
- its tracer never sees a GRU/LSTM/RNN as a module: on the CPU their autograd graph is the decomposed cell
  (Sigmoid, Tanh, Split, ... per time step), so no pruning group ever reaches them or the layer after them;
- its `LSTMPruner.prune_out_channels` cuts the wrong axes (`weight_ih` columns instead of gate rows, `bias_hh`
  with the unexpanded indices) and handles neither GRU, RNN nor more than one layer.
Removing unit j of layer k cuts row j of every gate block of `weight_ih_lk`, `weight_hh_lk` and both biases,
column j of `weight_hh_lk`, and the input column j of what reads the layer: `weight_ih_l(k+1)` inside the
module, or the input columns of the Linear or recurrent layer after the last one. With a zero initial state a
unit whose gate rows are all zero stays exactly zero (GRU: z = 1/2, n = 0, so h = h/2 = 0; LSTM: g = 0, so
c = c/2 = 0 and h = 0; RNN: h = tanh(0) = 0), so the model with the units removed must compute what the
original computes with those rows zeroed; `remove_hidden_units` checks exactly that on the example input and
refuses the result otherwise.
"""

from __future__ import annotations

import copy
import re
from typing import Iterable

import torch
from torch import nn
from torch.nn.utils import parametrize

from edgecompress.core.errors import RunFailure, UserError
from edgecompress.core.masks import finalize

RECURRENT_TYPES: dict[str, type[nn.Module]] = {"GRU": nn.GRU, "LSTM": nn.LSTM, "RNN": nn.RNN}
GATES = {nn.GRU: 3, nn.LSTM: 4, nn.RNN: 1}
_WEIGHT_NAME = re.compile(r"weight_(ih|hh)_l(\d+)(_reverse)?$")
CHECK_TOLERANCE = 1e-4  # relative: float32 sums in another order


class RecurrentWeight:
    """One weight matrix of a GRU/LSTM/RNN, pruned by the masking patterns as a layer of its own.

    >>> RecurrentWeight(nn.GRU(8, 16), "weight_hh_l0").weight.shape
    torch.Size([48, 16])
    """

    def __init__(self, owner: nn.Module, param: str):
        self.owner, self.param = owner, param

    @property
    def weight(self) -> torch.Tensor:
        return getattr(self.owner, self.param)

    def __repr__(self) -> str:
        return f"RecurrentWeight({type(self.owner).__name__}, {self.param!r})"


def recurrent_weights(name: str, module: nn.Module) -> dict[str, RecurrentWeight]:
    """`<name>.weight_ih_l0`, `<name>.weight_hh_l0`, ... -> each weight matrix of the recurrent `module`."""
    return {f"{name}.{p}": RecurrentWeight(module, p) for p in module._flat_weights_names if _WEIGHT_NAME.match(p)}


def recurrent_modules(model: nn.Module) -> dict[str, nn.Module]:
    return {n: m for n, m in model.named_modules() if isinstance(m, tuple(RECURRENT_TYPES.values()))}


def module_links(model: nn.Module, example_input: torch.Tensor) -> tuple[dict[nn.Module, set], set]:
    """({module: the modules whose outputs reach its input directly}, the modules whose outputs reach a model
    output directly), for every module with parameters of its own, from one forward pass's autograd graph.

    "Directly" means through operations that are not such modules (reshape, slicing, activations, additions).
    """
    leaves = [m for m in model.modules() if any(True for _ in m.parameters(recurse=False))]
    made_by: dict = {}  # grad_fn of a module's output -> the module
    inputs: dict[nn.Module, list] = {}
    hooks = []
    for module in leaves:
        hooks.append(module.register_forward_pre_hook(lambda m, args: inputs.setdefault(m, []).extend(_grad_fns(args))))
        hooks.append(module.register_forward_hook(lambda m, args, out: made_by.update(dict.fromkeys(_grad_fns(out), m))))
    try:
        with torch.enable_grad():
            outputs = model(example_input)
    finally:
        for hook in hooks:
            hook.remove()
    producers = {module: _producers(fns, made_by) for module, fns in inputs.items()}
    return producers, _producers(_grad_fns(outputs), made_by)


def _grad_fns(value) -> list:
    if isinstance(value, torch.Tensor):
        return [value.grad_fn] if value.grad_fn is not None else []
    if isinstance(value, (tuple, list)):
        return [fn for item in value for fn in _grad_fns(item)]
    if isinstance(value, dict):
        return [fn for item in value.values() for fn in _grad_fns(item)]
    return []


def _producers(start: Iterable, made_by: dict) -> set:
    found, seen, stack = set(), set(), list(start)
    while stack:
        fn = stack.pop()
        if fn in seen:
            continue
        seen.add(fn)
        if fn in made_by:
            found.add(made_by[fn])
            continue
        stack.extend(next_fn for next_fn, _ in getattr(fn, "next_functions", ()) if next_fn is not None)
    return found


def unit_scores(module: nn.Module, layer: int, norm: int, generator: torch.Generator | None) -> torch.Tensor:
    """One score per hidden unit of `layer`: the norm of every weight that unit owns (its gate rows in
    weight_ih and weight_hh, its weight_hh column), summed over directions; random with a generator."""
    hidden = module.hidden_size
    if generator is not None:
        return torch.rand(hidden, generator=generator)
    score = torch.zeros(hidden)
    for suffix in _directions(module):
        w_ih, w_hh = (getattr(module, f"weight_{kind}_l{layer}{suffix}").detach().abs() ** norm for kind in ("ih", "hh"))
        gates = GATES[type(module)]
        score += w_ih.reshape(gates, hidden, -1).sum(dim=(0, 2)) + w_hh.reshape(gates, hidden, -1).sum(dim=(0, 2)) + w_hh.sum(0)
    return score


def remove_hidden_units(
    model: nn.Module,
    amounts: dict[str, float],
    example_input: torch.Tensor,
    original_sizes: dict[str, int],
    norm: int = 2,
    seed: int | None = None,
    round_to: int | None = None,
) -> dict[str, str]:
    """Remove hidden units of the recurrent layers named in `amounts` (name -> fraction of `original_sizes`
    removed); return {layer: why it was left whole} for those that cannot lose units.

    Every layer of a multi-layer module keeps the same number of units (one `hidden_size`), each layer its
    own best ones. Raises RunFailure if the smaller model does not compute what the model with those units
    zeroed computes (something outside the layer's own consumers reads its outputs).
    """
    modules = dict(model.named_modules())
    producers, to_output = module_links(model, example_input)
    left, plans = {}, {}
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    for name, amount in amounts.items():
        rnn = modules[name]
        why = _cannot_shrink(rnn, [m for m, made in producers.items() if rnn in made], rnn in to_output)
        if why:
            left[name] = why
            continue
        kept = _kept_count(original_sizes[name], amount, round_to)
        if kept >= rnn.hidden_size:
            continue
        keep = [unit_scores(rnn, layer, norm, generator).topk(kept).indices.sort().values for layer in range(rnn.num_layers)]
        plans[name] = (rnn, keep, [m for m, made in producers.items() if rnn in made])
    if not plans:
        return left
    reference = copy.deepcopy(model)
    reference_modules = dict(reference.named_modules())
    for name, (rnn, keep, consumers) in plans.items():
        _zero_removed_units(reference_modules[name], keep)
        _cut(rnn, keep, consumers)
    _check_same_outputs(model, reference, example_input, list(plans))
    return left


def _cannot_shrink(rnn: nn.Module, consumers: list[nn.Module], feeds_output: bool) -> str | None:
    if getattr(rnn, "proj_size", 0):
        return "an LSTM with proj_size: its hidden units are not removed (the projection is kept whole)"
    if feeds_output:
        return "its outputs are the model's outputs, whose width is never pruned"
    width = rnn.hidden_size * len(_directions(rnn))
    for consumer in consumers:
        fits = (isinstance(consumer, nn.Linear) and consumer.in_features == width) or (
            isinstance(consumer, tuple(RECURRENT_TYPES.values())) and consumer.input_size == width
        )
        if not fits:
            return (f"its outputs feed a {type(consumer).__name__} whose inputs are not its {width} hidden units; "
                    "only a Linear or recurrent layer reading them one to one is cut")
    return None


def _kept_count(hidden: int, amount: float, round_to: int | None) -> int:
    kept = max(1, int(round(hidden * (1.0 - amount))))
    if round_to:
        kept = min(hidden, max(round_to, kept // round_to * round_to))
    return kept


def _directions(rnn: nn.Module) -> tuple[str, ...]:
    return ("", "_reverse") if rnn.bidirectional else ("",)


def _gate_rows(keep: torch.Tensor, hidden: int, gates: int) -> torch.Tensor:
    return torch.cat([keep + g * hidden for g in range(gates)])


def _input_columns(keep: torch.Tensor, hidden: int, directions: int) -> torch.Tensor:
    return torch.cat([keep + d * hidden for d in range(directions)])


def _zero_removed_units(rnn: nn.Module, keep: list[torch.Tensor]) -> None:
    hidden, gates = rnn.hidden_size, GATES[type(rnn)]
    with torch.no_grad():
        for layer, kept in enumerate(keep):
            removed = torch.ones(hidden, dtype=torch.bool)
            removed[kept] = False
            rows = _gate_rows(removed.nonzero().flatten(), hidden, gates)
            for suffix in _directions(rnn):
                for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    param = getattr(rnn, f"{kind}_l{layer}{suffix}", None)
                    if param is not None:
                        param[rows] = 0


def _cut(rnn: nn.Module, keep: list[torch.Tensor], consumers: list[nn.Module]) -> None:
    """Physically remove the units not in `keep` (one index tensor per layer) and their consumers' inputs."""
    if parametrize.is_parametrized(rnn):
        finalize(rnn)  # masks from an earlier stage are baked in: the shapes change under them
    hidden, gates, directions = rnn.hidden_size, GATES[type(rnn)], _directions(rnn)
    for layer, kept in enumerate(keep):
        rows = _gate_rows(kept, hidden, gates)
        for suffix in directions:
            _set(rnn, f"weight_hh_l{layer}{suffix}", getattr(rnn, f"weight_hh_l{layer}{suffix}")[rows][:, kept])
            w_ih = getattr(rnn, f"weight_ih_l{layer}{suffix}")[rows]
            if layer > 0:
                w_ih = w_ih[:, _input_columns(keep[layer - 1], hidden, len(directions))]
            _set(rnn, f"weight_ih_l{layer}{suffix}", w_ih)
            for kind in ("bias_ih", "bias_hh"):
                if getattr(rnn, f"{kind}_l{layer}{suffix}", None) is not None:
                    _set(rnn, f"{kind}_l{layer}{suffix}", getattr(rnn, f"{kind}_l{layer}{suffix}")[rows])
    columns = _input_columns(keep[-1], hidden, len(directions))
    rnn.hidden_size = len(keep[0])
    for consumer in consumers:
        if parametrize.is_parametrized(consumer):
            finalize(consumer)
        if isinstance(consumer, nn.Linear):
            _set(consumer, "weight", consumer.weight[:, columns])
            consumer.in_features = len(columns)
        else:
            for suffix in _directions(consumer):
                _set(consumer, f"weight_ih_l0{suffix}", getattr(consumer, f"weight_ih_l0{suffix}")[:, columns])
            consumer.input_size = len(columns)


def _set(module: nn.Module, name: str, value: torch.Tensor) -> None:
    old = getattr(module, name)
    setattr(module, name, nn.Parameter(value.detach().clone().contiguous(), requires_grad=old.requires_grad))


def _check_same_outputs(model: nn.Module, reference: nn.Module, example_input: torch.Tensor, names: list[str]) -> None:
    was_training = model.training
    model.eval()
    reference.eval()
    try:
        with torch.no_grad():
            got, want = model(example_input), reference(example_input)
    except Exception as exc:
        raise RunFailure(f"prune: the model no longer runs after removing hidden units of {', '.join(names)}: {exc}") from exc
    finally:
        model.train(was_training)
    got, want = _flat(got), _flat(want)
    scale = max(float(w.abs().max()) for w in want) if want else 0.0
    same = len(got) == len(want) and all(g.shape == w.shape and float((g - w).abs().max()) <= CHECK_TOLERANCE * max(scale, 1.0)
                                         for g, w in zip(got, want))
    if not same:
        raise RunFailure(
            f"prune: removing hidden units of {', '.join(names)} changes what the model computes (something besides "
            f"the next layer reads them); leave them out with prune.keep: [{', '.join(repr(n) for n in names)}]"
        )


def _flat(value) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for item in value for t in _flat(item)]
    if isinstance(value, dict):
        return [t for item in value.values() for t in _flat(item)]
    return []


def check_recurrent_criterion(kind: str, names: Iterable[str]) -> None:
    """Refuse a criterion that cannot score a recurrent weight, naming the layers and the fix."""
    names = list(names)
    if names and kind == "wanda":
        raise UserError(
            f"prune.criterion: wanda needs each weight's input, which a recurrent layer's weight_hh never shows a hook "
            f"({names[0]}); use magnitude or taylor"
        )

