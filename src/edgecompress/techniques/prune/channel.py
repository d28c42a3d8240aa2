"""Structured pruning: physically remove output channels / neurons, with Torch-Pruning.

Torch-Pruning traces the model's dependency graph, so removing conv2's filters also removes the matching
input columns of fc1 (and batch-norm entries, residual partners, concatenated slices); masks alone would make
nothing smaller or faster (FINDINGS sec. 1).
"""

from __future__ import annotations

from typing import Iterable

import torch
import torch_pruning as tp
from torch import nn

from edgecompress.core.errors import RunFailure, UserError, first_line
from edgecompress.core.verbosity import quiet_libraries
from edgecompress.techniques.prune.calibration import batch_loss
from edgecompress.techniques.prune.criteria import CriterionConfig, Magnitude, Random, Taylor
from edgecompress.techniques.prune.recurrent import RECURRENT_TYPES, module_links, recurrent_modules

# criterion type -> Torch-Pruning's importance for it
IMPORTANCE = {
    Magnitude: lambda criterion: tp.importance.GroupMagnitudeImportance(p=criterion.norm),
    Taylor: lambda criterion: tp.importance.GroupTaylorImportance(),
    Random: lambda criterion: tp.importance.RandomImportance(),
}


def channel_pruner(
    model: nn.Module,
    example_input: torch.Tensor,
    layers: dict[str, nn.Module],
    amount: float,
    criterion: CriterionConfig = Magnitude(),
    global_scope: bool = False,
    steps: int = 1,
    per_layer: dict[str, float] | None = None,
    round_to: int | None = None,
    left: dict[str, str] | None = None,
    has_other_work: bool = False,
) -> tp.pruner.BasePruner | None:
    """A Torch-Pruning pruner that removes `amount` of the output channels of `layers` over `steps` calls.

    The model's output width is never cut, whatever the selection: a layer whose channels reach a model
    output (its out-features, or any layer coupled to it, e.g. through a residual sum or a concatenation) is
    left whole, and named in `left`. If that leaves nothing and `has_other_work` is False (no recurrent
    layer to shrink either), a UserError says what would prune something; with other work, None.

    With `round_to` (layer scope), every pruned layer keeps a multiple of that many channels, at least one
    multiple: on this machine a CNN with 22/44 channels ran 1.4x slower than with 32/64 (BENCHMARKS.md, "sparsity sweep").
    """
    if type(criterion) not in IMPORTANCE:
        raise UserError(f"prune.criterion: {criterion.kind} does not apply to pattern channel; use magnitude, taylor or random")
    selected = set(map(id, layers.values()))
    ignored = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)) and id(m) not in selected]
    around = _around_recurrent(model, example_input)
    ignored += around
    # Torch-Pruning sees a GRU's/RNN's weights as loose parameters it may cut: never (recurrent.py does it)
    loose = [p for m in around if isinstance(m, tuple(RECURRENT_TYPES.values())) for p in m.parameters()]
    importance = IMPORTANCE[type(criterion)](criterion)
    if round_to is not None:
        per_layer = {name: _rounded_ratio(module, (per_layer or {}).get(name, amount), round_to) for name, module in layers.items()}
    ratio_dict = {layers[name]: ratio for name, ratio in (per_layer or {}).items()} or None

    def build(ignored_layers):
        try:
            with quiet_libraries(warnings=("Unwrapped parameters detected",)):
                return tp.pruner.BasePruner(
                    model, example_input, importance=importance, pruning_ratio=amount, pruning_ratio_dict=ratio_dict,
                    global_pruning=global_scope, ignored_layers=ignored_layers + loose, iterative_steps=steps,
                    round_to=round_to, root_module_types=[tp.ops.TORCH_CONV, tp.ops.TORCH_LINEAR],
                )
        except Exception as exc:
            raise RunFailure(f"prune: Torch-Pruning cannot trace {type(model).__name__}: {first_line(exc)}") from exc

    pruner = build(ignored)
    outputs = [m for m in output_layers(pruner.DG, ignored) if id(m) in selected]
    if not outputs:
        return pruner
    names = {id(m): n for n, m in layers.items()}
    reason = "its outputs reach the model's outputs, whose width is never pruned"
    if left is not None:
        left.update({names[id(m)]: reason for m in outputs})
    if len(outputs) == len(layers):
        if has_other_work:
            return None
        raise UserError(
            f"prune.pattern: channel removal never cuts the model's outputs, and every selected layer's channels reach them "
            f"({', '.join(names[id(m)] for m in outputs)}); use pattern unstructured (or nm, block) with keep_classifier: false"
        )
    return build(ignored + outputs)


def output_layers(graph: tp.DependencyGraph, ignored: list[nn.Module]) -> list[nn.Module]:
    """The layers whose output channels Torch-Pruning would remove together with a model output's channels.

    Torch-Pruning guards no output: a group reaches one when it holds the graph's output node, or removes
    output channels of a layer that nothing after it reads (the classifier).
    """
    found = []
    for group in graph.get_all_groups(ignored_layers=ignored, root_module_types=[tp.ops.TORCH_CONV, tp.ops.TORCH_LINEAR]):
        reaches = any(
            isinstance(dep.target.module, tp.ops._OutputOp)
            or (not graph.module2node[dep.target.module].outputs and graph.is_out_channel_pruning_fn(dep.handler))
            for dep, _ in group
        )
        if reaches:
            found += [dep.target.module for dep, _ in group
                      if isinstance(dep.target.module, nn.Module) and graph.is_out_channel_pruning_fn(dep.handler)]
    return found


def _around_recurrent(model: nn.Module, example_input) -> list[nn.Module]:
    """Recurrent layers and the layers feeding them: Torch-Pruning never sees a recurrent layer (its CPU autograd
    graph is the decomposed cell), so it could not cut a GRU's input columns; `recurrent.py` removes hidden units."""
    recurrent = list(recurrent_modules(model).values())
    if not recurrent:
        return []
    producers, _ = module_links(model, example_input)
    feeding = {m for rnn in recurrent for m in producers.get(rnn, ())}
    return recurrent + [m for m in feeding if m not in recurrent]


def _rounded_ratio(module: nn.Module, amount: float, round_to: int) -> float:
    """The ratio that makes Torch-Pruning keep the largest multiple of `round_to` channels within `amount`.

    Written here because Torch-Pruning's own `round_to` rounds the kept count down to zero at high amounts
    (and then prunes nothing); here a layer keeps at least `round_to` channels, or all if it has fewer.
    """
    channels = module.weight.shape[0]
    kept = max(round_to, int(channels * (1.0 - amount)) // round_to * round_to)
    if kept >= channels:
        return 0.0
    return 1.0 - (kept + 0.5) / channels  # Torch-Pruning keeps int(channels * (1 - ratio)) = kept


def step_pruner(pruner, model: nn.Module, criterion: CriterionConfig, batches: Iterable | None = None, loss_fn=None) -> None:
    """One pruning step; Taylor importance first needs gradients from a few batches."""
    was_training = model.training
    model.eval()
    try:
        if criterion.needs_data:  # Taylor: gradients first
            model.zero_grad(set_to_none=True)
            for batch in batches:
                batch_loss(model, batch, loss_fn).backward()
        pruner.step()
    except UserError:
        raise
    except Exception as exc:
        raise RunFailure(f"prune: Torch-Pruning could not prune {type(model).__name__}: {first_line(exc)}") from exc
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)

