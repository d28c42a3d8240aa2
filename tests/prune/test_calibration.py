"""Data-driven criteria take calibration data in the forms models need: tensors, positional tuples, dicts, a callable."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from edgecompress.core.errors import UserError
from edgecompress.core.masks import get_mask
from edgecompress.orchestration.pipeline.stages import Prune
from edgecompress.techniques.prune.criteria import Taylor, Wanda
from edgecompress.techniques.prune.engine import prune_model
from edgecompress.techniques.prune.scoring import ScoreContext


class TwoInputs(nn.Module):
    """Called like a Hugging Face model: two named inputs, one of them a mask."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(4, 3)
        self.head = nn.Linear(3, 2)

    def forward(self, features, mask):
        return self.head(self.proj(features * mask.unsqueeze(-1)))


FEATURES = np.array([[[1.0, 0.0, 2.0, 1.0], [3.0, 0.0, 0.0, 1.0]]], dtype=np.float32)  # (batch 1, 2 tokens, 4)
MASK = np.array([[1.0, 1.0]], dtype=np.float32)
NORMS = torch.tensor([10.0, 0.0, 4.0, 2.0]).sqrt()  # per input feature over both tokens


@pytest.mark.parametrize(
    "batches",
    [
        [{"features": FEATURES, "mask": MASK}],  # keyword feeds, numpy (as encoders.batches gives)
        [({"features": torch.from_numpy(FEATURES), "mask": torch.from_numpy(MASK)}, None)],  # (kwargs, targets)
        [((FEATURES, MASK), torch.zeros(1))],  # positional inputs with targets
        lambda model: model(torch.from_numpy(FEATURES), torch.from_numpy(MASK)),  # a function that runs the model
    ],
    ids=["dicts", "dict-and-targets", "tuple-and-targets", "callable"],
)
def test_wanda_reads_input_norms_from_every_batch_form(batches):
    torch.manual_seed(0)
    model = TwoInputs()
    scores = Wanda().scores({"proj": model.proj}, ScoreContext(model, batches=batches))["proj"]
    assert torch.allclose(scores, model.proj.weight.detach().abs() * NORMS)


def test_engine_prunes_a_keyword_input_model_with_wanda_on_dict_feeds():
    torch.manual_seed(0)
    model = TwoInputs()
    config = Prune(pattern="unstructured", criterion="wanda", amount=0.25, layers=("proj",))
    prune_model(model, config, None, train=lambda *a, **k: None, batches=[{"features": FEATURES, "mask": MASK}])
    removed = get_mask(model.proj) == 0
    assert int(removed.sum()) == 3 and removed[:, 1].all()  # the feature that is always zero goes first


def test_taylor_needs_targets_and_a_bad_batch_is_named():
    model = TwoInputs()
    ctx = ScoreContext(model, batches=[{"features": FEATURES, "mask": MASK}], loss_fn=nn.functional.mse_loss)
    with pytest.raises(UserError, match="^prune.criterion: taylor needs \\(inputs, targets\\) batches"):
        Taylor().scores({"proj": model.proj}, ctx)
    with pytest.raises(UserError, match="^prune.calibration: a batch is str"):
        Wanda().scores({"proj": model.proj}, ScoreContext(model, batches=["text"]))
