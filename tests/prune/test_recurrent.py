"""GRU, LSTM and RNN layers as prunable layers: masked weight matrices, hidden units removed consistently."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from edgecompress.core.masks import finalized_copy, get_mask
from edgecompress.core.models.checkpoint import resize_to_saved, save_model_file
from edgecompress.core.train import train_epochs
from edgecompress.onnx import export_onnx
from edgecompress.runtime.sessions import make_session
from edgecompress.techniques.prune.config import Prune
from edgecompress.techniques.prune.engine import prune_model


class Rows(nn.Module):
    """A recurrent layer over the 8 image rows, then a Linear head on the last step's output."""

    def __init__(self, kind=nn.GRU, layers=1, bidirectional=False, hidden=16):
        super().__init__()
        self.rnn = kind(8, hidden, batch_first=True, num_layers=layers, bidirectional=bidirectional)
        self.head = nn.Linear(hidden * (2 if bidirectional else 1), 10)

    def forward(self, x):
        out, _ = self.rnn(x.reshape(x.shape[0], 8, 8))
        return self.head(out[:, -1])


def _zeroed_units(model: Rows, pruned: Rows) -> Rows:
    """`model` (one layer) with the gate rows of every unit `pruned` no longer has set to zero; a kept unit
    is recognised by its input weights, which removing other units leaves as they were."""
    reference = copy.deepcopy(model)
    rnn, gates = reference.rnn, {nn.GRU: 3, nn.LSTM: 4, nn.RNN: 1}[type(model.rnn)]
    hidden, kept_rows = rnn.hidden_size, pruned.rnn.weight_ih_l0[: pruned.rnn.hidden_size]
    removed = [j for j in range(hidden) if not any(torch.equal(rnn.weight_ih_l0[j], row) for row in kept_rows)]
    assert len(removed) == hidden - pruned.rnn.hidden_size
    rows = [g * hidden + j for g in range(gates) for j in removed]
    with torch.no_grad():
        for kind in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
            getattr(rnn, kind)[rows] = 0
    return reference


@pytest.mark.parametrize("kind", [nn.GRU, nn.LSTM, nn.RNN])
def test_removing_hidden_units_computes_what_zeroing_their_gate_rows_computes(kind):
    torch.manual_seed(0)
    model = Rows(kind).eval()
    pruned = copy.deepcopy(model)
    prune_model(pruned, Prune(amount=0.5), torch.rand(1, 1, 8, 8), None)
    assert pruned.rnn.hidden_size == 8 and pruned.head.in_features == 8
    assert pruned.rnn.weight_ih_l0.shape == ({nn.GRU: 3, nn.LSTM: 4, nn.RNN: 1}[kind] * 8, 8)
    x = torch.rand(5, 1, 8, 8)
    torch.testing.assert_close(pruned(x), _zeroed_units(model, pruned)(x), rtol=1e-5, atol=1e-5)


def test_stacked_bidirectional_layers_all_shrink_and_still_run_in_onnx_runtime(tmp_path):
    torch.manual_seed(0)
    model = Rows(nn.LSTM, layers=2, bidirectional=True).eval()
    prune_model(model, Prune(amount=0.5, pattern={"kind": "channel", "round_to": 4}), torch.rand(1, 1, 8, 8), None)
    assert model.rnn.hidden_size == 8 and model.rnn.weight_ih_l1.shape[1] == 16 and model.head.in_features == 16
    x = torch.rand(3, 1, 8, 8)
    got = make_session(export_onnx(model, x[:1], tmp_path / "m.onnx")).run(None, {"input": x.numpy()})[0]
    np.testing.assert_allclose(got, model(x).detach().numpy(), rtol=1e-4, atol=1e-5)


def test_a_recurrent_layer_whose_outputs_are_the_models_keeps_its_units():
    class Bare(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.gru = nn.Linear(8, 8), nn.GRU(8, 10, batch_first=True)

        def forward(self, x):
            return self.gru(self.fc(x.reshape(x.shape[0], 8, 8)))[0][:, -1]

    model, left = Bare(), {}
    prune_model(model, Prune(amount=0.5, keep_classifier=False), torch.rand(1, 1, 8, 8), None, left=left)
    assert model(torch.rand(2, 1, 8, 8)).shape == (2, 10) and model.gru.hidden_size == 10
    assert left == {"gru": "its outputs are the model's outputs, whose width is never pruned"}


@pytest.mark.parametrize("pattern, zeros", [({"kind": "unstructured"}, 0.5), ({"kind": "nm", "n": 2, "m": 4}, 0.5)])
def test_masks_on_recurrent_weights_hold_through_fine_tuning_and_export(pattern, zeros, small_task, tmp_path):
    torch.manual_seed(0)
    model = Rows(nn.LSTM)
    prune_model(model, Prune(pattern=pattern, amount=0.5), None, None)
    masks = {name: get_mask(model.rnn, name).clone() for name in ("weight_ih_l0", "weight_hh_l0")}
    assert all(float((m == 0).float().mean()) == zeros for m in masks.values())
    train_epochs(model, small_task, 1)
    plain = finalized_copy(model)
    for name, mask in masks.items():
        assert torch.all(getattr(plain.rnn, name)[mask == 0] == 0), f"{name}: pruned weights stay zero"
    x = torch.rand(3, 1, 8, 8)
    got = make_session(export_onnx(model, x[:1], tmp_path / "m.onnx")).run(None, {"input": x.numpy()})[0]
    np.testing.assert_allclose(got, plain(x).detach().numpy(), rtol=1e-4, atol=1e-5)
    save_model_file(model, tmp_path / "m.safetensors", keep_masks=True)
    again = resize_to_saved(Rows(nn.LSTM), tmp_path / "m.safetensors")
    assert torch.equal(get_mask(again.rnn, "weight_hh_l0"), masks["weight_hh_l0"])


def test_a_shrunk_recurrent_model_reloads_from_its_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = Rows(nn.GRU, layers=2).eval()
    prune_model(model, Prune(amount=0.25), torch.rand(1, 1, 8, 8), None)
    save_model_file(model, tmp_path / "m.safetensors")
    again = resize_to_saved(Rows(nn.GRU, layers=2), tmp_path / "m.safetensors").eval()
    x = torch.rand(2, 1, 8, 8)
    assert again.rnn.hidden_size == 12 and torch.equal(again(x), model(x))
