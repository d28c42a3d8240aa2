"""`edgecompress.apply`: one stage config on one model, inside the user's own code."""

from __future__ import annotations

import onnx
import pytest
import torch
from torch.nn import functional as F

import edgecompress as ec
from edgecompress.core.errors import UserError
from edgecompress.core.masks import get_mask
from edgecompress.core.models import DigitsCNN, DigitsMLP
from edgecompress.runtime.sessions import make_session


def _own_training_loop(model, loader, steps):
    """What a user writes: their optimizer, their loss, no edgecompress in the loop."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for step, (x, y) in enumerate(loader):
        if step == steps:
            break
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    return model.eval()


def test_nm_pruning_in_a_hand_written_loop_keeps_2_of_4_through_optimizer_steps(trained_cnn, digits):
    before = {k: v.clone() for k, v in trained_cnn.state_dict().items()}
    pruned = ec.apply(trained_cnn, ec.Prune(pattern=ec.NM(2, 4), criterion=ec.Magnitude(norm=1), layers=("conv2", "fc1")), digits)
    assert all(torch.equal(v, before[k]) for k, v in trained_cnn.state_dict().items()), "the input model is not modified"
    _own_training_loop(pruned, digits.train_loader, steps=20)
    for name in ("conv2", "fc1"):
        weight = getattr(pruned, name).weight.detach()
        groups = (weight.reshape(weight.shape[0], -1) != 0).reshape(weight.shape[0], -1, 4)
        assert torch.equal(groups.sum(dim=2), torch.full(groups.shape[:2], 2)), f"{name}: every group of 4 keeps exactly 2"
        assert torch.equal(weight != 0, get_mask(getattr(pruned, name)).bool()), "masked weights stayed zero while training"
    assert pruned.conv1.weight.count_nonzero() == pruned.conv1.weight.numel()  # not selected: untouched


def test_global_unstructured_pruning_hits_the_amount_exactly_and_magnitude_picks_the_small_weights(trained_cnn):
    pruned = ec.apply(trained_cnn, ec.Prune(pattern=ec.Unstructured(), amount=0.8, scope="global"))  # magnitude: no data needed
    layers = ("conv1", "conv2", "fc1")
    kept = torch.cat([getattr(pruned, n).weight.detach().flatten() for n in layers])
    original = torch.cat([getattr(trained_cnn, n).weight.detach().flatten() for n in layers])
    assert int((kept == 0).sum()) == round(0.8 * kept.numel())
    assert original[kept == 0].abs().max() <= original[kept != 0].abs().min()


def test_channel_removal_with_round_to_gives_multiples_of_eight_and_still_classifies(trained_cnn, digits):
    pruned = ec.apply(trained_cnn, ec.Prune(pattern=ec.Channels(round_to=8), amount=0.3), example_input=torch.zeros(1, 1, 8, 8))
    assert (pruned.conv1.out_channels, pruned.conv2.out_channels, pruned.fc1.out_features) == (16, 40, 88)
    assert pruned(torch.zeros(2, 1, 8, 8)).shape == (2, 10)


def test_a_callable_criterion_decides_what_is_kept():
    def keep_the_first_half_of_rows(name, module):
        scores = torch.zeros_like(module.weight)
        scores[: module.weight.shape[0] // 2] = 1.0
        return scores

    pruned = ec.apply(DigitsCNN(), ec.Prune(pattern=ec.Unstructured(), criterion=keep_the_first_half_of_rows, amount=0.5))
    mask = get_mask(pruned.fc1)
    assert mask[:64].all() and not mask[64:].any()


def test_finetune_through_apply_trains_from_a_plain_loader(trained_cnn, small_digits_task):
    loader = small_digits_task.train_loader
    x, y = next(iter(loader))
    torch.manual_seed(0)
    pruned = ec.apply(trained_cnn, ec.Prune(pattern=ec.Unstructured(), amount=0.9, scope="global"))
    loss_before = F.cross_entropy(pruned(x), y).item()
    tuned = ec.apply(pruned, ec.Finetune(epochs=3, lr=2e-3), loader)
    assert F.cross_entropy(tuned(x), y).item() < loss_before
    assert torch.equal(tuned.fc1.weight == 0, pruned.fc1.weight == 0), "fine-tuning keeps the pruned weights at zero"


def test_onnx_stages_return_the_written_artifact(trained_mlp, digits, tmp_path):
    path = ec.apply(trained_mlp, ec.Quantize(mode="dynamic"), digits, out=tmp_path / "mlp-int8.onnx")
    assert path == tmp_path / "mlp-int8.onnx"
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert "MatMulInteger" in ops or "DynamicQuantizeMatMul" in ops
    x, _ = next(iter(digits.eval_loader))
    got = make_session(path).run(None, {"input": x.numpy()})[0]
    assert (got.argmax(1) == trained_mlp(x).argmax(1).numpy()).mean() > 0.95  # int8 keeps the decisions
    fp16 = ec.apply(path.parent / "mlp-int8.onnx", ec.CastFp16(), out=tmp_path / "fp16.onnx")
    assert fp16.exists()


def test_apply_refuses_in_one_line_naming_what_to_pass(trained_cnn, tmp_path):
    with pytest.raises(UserError, match=r"^finetune: this stage needs data; pass data="):
        ec.apply(DigitsMLP(), ec.Finetune(epochs=1))
    with pytest.raises(UserError, match=r"^apply: QuantizeStatic writes an ONNX file; pass out="):
        ec.apply(trained_cnn, ec.Quantize())
    with pytest.raises(UserError, match=r"^apply: config must be a stage config"):
        ec.apply(trained_cnn, {"stage": "prune"})
    with pytest.raises(UserError, match=r"^prune.criterion: wanda needs data"):
        ec.apply(trained_cnn, ec.Prune(pattern=ec.Unstructured(), criterion=ec.Wanda()))
