"""Techniques on a decoder: pruning compared per output row (Wanda's way) and distillation by the KL divergence of
the next-token distributions, on the tiny trained Llama."""

import math

import pytest
import torch
import torch.nn.functional as F

import edgecompress as ec
from edgecompress.core.masks import get_mask
from edgecompress.core.train.distill import distillation_loss
from tests.lm.conftest import kl_to_original


def test_kl_distillation_loss_of_token_logits_is_the_mean_over_tokens():
    torch.manual_seed(0)
    student, teacher = torch.randn(2, 5, 7), torch.randn(2, 5, 7)
    by_hand = [F.kl_div(F.log_softmax(student[b, t], -1), F.log_softmax(teacher[b, t], -1), log_target=True, reduction="sum")
               for b in range(2) for t in range(5)]
    assert distillation_loss(student, teacher, 1.0, class_dim=-1).item() == pytest.approx(sum(by_hand).item() / 10, rel=1e-5)
    # a classifier's [batch, classes]: the mean over rows at temperature 2, times 2^2
    rows = [F.kl_div(F.log_softmax(student[b, 0] / 2, -1), F.log_softmax(teacher[b, 0] / 2, -1), log_target=True, reduction="sum")
            for b in range(2)]
    assert distillation_loss(student[:, 0], teacher[:, 0], 2.0).item() == pytest.approx(4 * sum(rows).item() / 2, rel=1e-5)


def test_wanda_per_row_prunes_half_of_every_row_of_the_decoders_linears(sharp_llama):
    decoder, task = sharp_llama
    pruned = ec.apply(decoder.model, ec.Prune(pattern="unstructured", criterion="wanda", scope="row", amount=0.5), task)
    layers = {name: m for name, m in pruned.named_modules() if isinstance(m, torch.nn.Linear) and get_mask(m) is not None}
    assert len(layers) == 2 * 7  # q, k, v, o, gate, up, down of both layers; the tied output layer is kept
    for layer in layers.values():
        removed = (get_mask(layer) == 0).sum(dim=1)
        assert removed.tolist() == [layer.in_features // 2] * layer.out_features


def test_distill_recovers_a_pruned_decoder_by_kl_without_being_told_the_loss(sharp_llama):
    decoder, task = sharp_llama
    pruned = ec.apply(decoder.model, ec.Prune(pattern="nm", n=2, m=4, criterion="l1"), task)
    before = kl_to_original(pruned, task)
    recovered = ec.apply(pruned, ec.Distill(epochs=10, lr=3e-3), task, teacher=decoder.model)
    after = kl_to_original(recovered, task)
    assert after < 0.75 * before, (before, after)  # 0.0435 -> 0.0266 here
    for name, layer in recovered.named_modules():  # 2:4 still holds after training
        if isinstance(layer, torch.nn.Linear) and get_mask(layer) is not None:
            assert torch.all(get_mask(layer).reshape(layer.out_features, -1, 4).sum(-1) == 2), name
    assert math.isfinite(after)


def test_removing_half_the_ffn_neurons_shrinks_every_swiglu_and_wanda_with_refit_keeps_more(sharp_llama):
    """Minitron's width pruning of the FFN on a decoder: gate and up rows and down columns really go."""
    decoder, task = sharp_llama
    before = sum(p.numel() for p in decoder.model.parameters())
    magnitude = ec.apply(decoder.model, ec.RemoveFfn(fraction=0.5, criterion="magnitude"), task)
    wanda = ec.apply(decoder.model, ec.RemoveFfn(fraction=0.5), task)
    for model in (magnitude, wanda):
        for layer in model.lm.model.layers:
            mlp = layer.mlp
            assert (mlp.gate_proj.weight.shape, mlp.up_proj.weight.shape, mlp.down_proj.weight.shape) == ((32, 32), (32, 32), (32, 32))
        assert model.lm.config.intermediate_size == 32
        assert sum(p.numel() for p in model.parameters()) == before - 2 * 3 * 32 * 32  # 2 layers, 3 matrices of 32 x 32
    assert decoder.model.lm.model.layers[0].mlp.up_proj.out_features == 64  # the original is left whole
    kl_magnitude, kl_wanda = kl_to_original(magnitude, task), kl_to_original(wanda, task)
    assert kl_wanda < 0.8 * kl_magnitude, (kl_magnitude, kl_wanda)  # 0.0033 -> 0.0005 here
