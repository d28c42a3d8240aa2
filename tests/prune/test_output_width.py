"""The model's output width is never pruned, and every refusal that suggests a setting is right: following
the suggestion gives a run that prunes something and keeps the outputs' width (issue 18)."""

import pytest
import torch
from pydantic import ValidationError
from torch import nn

from edgecompress.core.errors import UserError
from edgecompress.core.masks import finalized_copy
from edgecompress.core.train import train_epochs
from edgecompress.techniques.prune.config import Prune
from edgecompress.techniques.prune.engine import prune_model


class RowGRU(nn.Module):
    def __init__(self, hidden=16):
        super().__init__()
        self.gru, self.head = nn.GRU(8, hidden, batch_first=True), nn.Linear(hidden, 10)

    def forward(self, x):
        _, hidden = self.gru(x.reshape(x.shape[0], 8, 8))
        return self.head(hidden[-1])


class TwoHeads(nn.Module):
    """Outputs made of a concatenation and of a residual sum: no layer there may lose a channel."""

    def __init__(self):
        super().__init__()
        self.body, self.mid = nn.Linear(64, 32), nn.Linear(32, 16)
        self.a, self.b, self.c = nn.Linear(16, 5), nn.Linear(16, 5), nn.Linear(16, 16)

    def forward(self, x):
        h = torch.relu(self.mid(torch.relu(self.body(x.flatten(1)))))
        return torch.cat([self.a(h), self.b(h)], 1), h + self.c(h)


def mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def only_classifier():
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 10))


def _widths(model, x):
    out = model(x)
    return [o.shape for o in out] if isinstance(out, tuple) else [out.shape]


def _run(factory, config, task):
    torch.manual_seed(0)
    model = factory()
    x = torch.rand(3, 1, 8, 8)
    before, weights = _widths(model, x), sum(p.numel() for p in model.parameters())

    def train(epochs, callbacks=()):
        train_epochs(model, task, 1, callbacks=callbacks)

    prune_model(model, config, x[:1], train, batches=task.train_loader, loss_fn=task.loss_fn)
    zeros = sum(int((p == 0).sum()) for p in finalized_copy(model).parameters())  # masks baked in
    return before, _widths(model, x), weights, sum(p.numel() for p in model.parameters()), zeros


@pytest.mark.parametrize("factory", [mlp, RowGRU, TwoHeads])
def test_channel_pruning_never_changes_the_output_width_even_with_keep_classifier_false(factory, small_task):
    before, after, weights, weights_after, _ = _run(factory, Prune(amount=0.5, keep_classifier=False), small_task)
    assert after == before
    assert weights_after < weights * 0.75, "the rest of the model was still pruned"


def test_the_left_whole_layers_are_named_with_the_reason():
    model, left = TwoHeads(), {}
    prune_model(model, Prune(amount=0.5, keep_classifier=False), torch.rand(1, 1, 8, 8), None, left=left)
    assert sorted(left) == ["a", "b", "c", "mid"], "mid's channels reach the residual output through h"
    assert set(left.values()) == {"its outputs reach the model's outputs, whose width is never pruned"}
    assert model.body.out_features == 16 and model.mid.in_features == 16


# (model, refused settings, the suggestion the message must hold, the settings that follow it)
SUGGESTIONS = [
    (only_classifier, dict(pattern="unstructured"), "set keep_classifier: false",
     dict(pattern="unstructured", keep_classifier=False)),
    (only_classifier, dict(), "use pattern unstructured with keep_classifier: false",
     dict(pattern="unstructured", keep_classifier=False)),
    (only_classifier, dict(keep_classifier=False), "use pattern unstructured (or nm, block) with keep_classifier: false",
     dict(pattern="unstructured", keep_classifier=False)),
    (mlp, dict(keep=("1",)), "remove patterns from prune.keep", dict()),
    (mlp, dict(layers=("3",)), "widen prune.layers", dict(layers=("*",))),
    (RowGRU, dict(types=("Linear",)), "add GRU to prune.types", dict(types=("Linear", "GRU"))),
    (RowGRU, dict(pattern="unstructured", criterion="wanda"), "use magnitude or taylor",
     dict(pattern="unstructured", criterion="taylor")),
    (RowGRU, dict(criterion="taylor"), "use magnitude or random", dict(criterion="random")),
    (mlp, dict(criterion="wanda"), "use magnitude, taylor or random", dict(criterion="taylor")),
    (mlp, dict(pattern="unstructured", criterion="movement"), "use schedule gradual or iterative",
     dict(pattern="unstructured", criterion="movement", schedule="gradual", epochs=1, steps=2)),
    (mlp, dict(schedule="gradual"), "use oneshot or iterative", dict(schedule="iterative", steps=2, epochs=1)),
    (mlp, dict(pattern="nm", scope="global"), "scope global does not apply", dict(pattern="nm")),
    (mlp, dict(pattern="nm", amount=0.9), "leave it out", dict(pattern="nm")),
    (mlp, dict(per_layer={"1": 0.5}, scope="global"), "per_layer amounts need scope layer", dict(per_layer={"1": 0.5})),
    (mlp, dict(pattern="channel", round_to=8, scope="global"), "round_to only applies to pattern channel with scope layer",
     dict(pattern="channel", round_to=8)),
    (mlp, dict(pattern="block", block=(5, 5)), "choose a block shape that divides both sides",
     dict(pattern="block", block=(8, 8))),
]


@pytest.mark.parametrize("factory, refused, suggestion, fixed", SUGGESTIONS, ids=[s[2][:40] for s in SUGGESTIONS])
def test_following_a_refusals_suggestion_gives_a_run_that_prunes_and_keeps_the_output_width(
    factory, refused, suggestion, fixed, small_task
):
    with pytest.raises((UserError, ValidationError)) as refusal:
        _run(factory, Prune(**refused), small_task)
    message = str(refusal.value)
    assert suggestion in message
    assert isinstance(refusal.value, ValidationError) or len(message.strip().splitlines()) == 1
    before, after, weights, weights_after, zeros = _run(factory, Prune(**fixed), small_task)
    assert after == before
    assert weights_after < weights or zeros > 0, "the run pruned something"
