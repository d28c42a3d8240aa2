"""Fresh random weights for a model's own architecture: what "trained from scratch" starts from.

Every torch layer re-initialises itself with `reset_parameters()` (a few, like MultiheadAttention, only with the
private `_reset_parameters()`); batch-norm's resets its running statistics too. A parameter held by a module
with neither would keep its trained values and make a "from scratch" comparison quietly wrong, so it is refused.
"""

from __future__ import annotations

from torch import nn

from edgecompress.core.errors import UserError


def reinitialise(model: nn.Module) -> nn.Module:
    """Re-initialise `model` in place (from torch's generator: seed it first) and return it.

    >>> model = reinitialise(nn.Sequential(nn.Linear(4, 2)))
    """
    check_reinitialisable(model)
    for module in model.modules():
        _reset(module)()
    return model


def check_reinitialisable(model: nn.Module) -> None:
    """Raise a UserError naming the first parameter that no module's reset method re-initialises."""
    for name, module in model.named_modules():
        if _reset(module) is _nothing:
            own = next((p for p, _ in module.named_parameters(recurse=False)), None)
            if own is not None:
                where = f"{name}.{own}" if name else own
                raise UserError(
                    f"cannot train {type(model).__name__} from scratch: nothing re-initialises parameter {where!r} "
                    f"({type(module).__name__} has no reset_parameters()); give {type(module).__name__} a "
                    "reset_parameters() method that draws its initial values"
                )


def _reset(module: nn.Module):
    reset = getattr(module, "reset_parameters", None) or getattr(module, "_reset_parameters", None)
    return reset if callable(reset) else _nothing


def _nothing() -> None:
    pass
