"""Structured removal of FFN neurons and attention heads: exact shapes, exact parameter savings, same function."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from edgecompress.core.errors import UserError
from edgecompress.core.masks import set_mask
from edgecompress.families.encoder.artifact import embed_feeds
from edgecompress.families.encoder.encoder import SentenceEncoder
from edgecompress.families.encoder.export import export_encoder
from edgecompress.techniques.transformer.structured import input_grams, remove_attention_heads, remove_ffn_neurons

HIDDEN, HEADS, FFN, LAYERS = 32, 4, 64, 2


def tiny_encoder(seed: int = 0) -> SentenceEncoder:
    """2 layers, 32 wide, 4 heads of 8, 64 FFN neurons; weights large enough that every layer matters."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=100, hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=HEADS, intermediate_size=FFN, initializer_range=0.2)
    return SentenceEncoder(BertModel(config, add_pooling_layer=False)).eval()


def token_feeds(batches: int = 4, size: int = 8, length: int = 12, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """Random token batches; every other sentence is padded after 7 tokens."""
    rng = np.random.default_rng(seed)
    feeds = []
    for _ in range(batches):
        ids = rng.integers(1, 100, (size, length))
        mask = np.ones_like(ids)
        mask[::2, 7:] = 0
        feeds.append({"input_ids": (ids * mask).astype(np.int64), "attention_mask": mask.astype(np.int64)})
    return feeds


def embeddings(model: nn.Module, feeds) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([model(torch.as_tensor(f["input_ids"]), torch.as_tensor(f["attention_mask"])) for f in feeds])


def params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_removing_a_quarter_of_the_ffn_neurons_shrinks_both_matrices_to_exact_sizes():
    model = tiny_encoder()
    before = params(model)
    report = remove_ffn_neurons(model, 0.25, token_feeds())
    for layer in model.backbone.encoder.layer:
        assert layer.intermediate.dense.weight.shape == (48, HIDDEN) and layer.intermediate.dense.bias.shape == (48,)
        assert layer.output.dense.weight.shape == (HIDDEN, 48) and layer.output.dense.in_features == 48
    # per layer, 16 neurons: a row + bias of intermediate.dense and a column of output.dense
    assert before - params(model) == LAYERS * 16 * (HIDDEN + 1 + HIDDEN)
    assert report["kept_per_layer"] == [48, 48] and report["params_before"] - report["params_after"] == 2080
    assert model.backbone.config.intermediate_size == 48
    assert embeddings(model, token_feeds()).shape == (32, HIDDEN)


def test_removing_half_the_heads_shrinks_qkv_and_output_and_patches_the_head_count():
    model = tiny_encoder()
    before = params(model)
    report = remove_attention_heads(model, 0.5, token_feeds())
    for layer in model.backbone.encoder.layer:
        attention = layer.attention
        for linear in (attention.self.query, attention.self.key, attention.self.value):
            assert linear.weight.shape == (16, HIDDEN) and linear.bias.shape == (16,)
        assert attention.output.dense.weight.shape == (HIDDEN, 16)
        assert attention.self.num_attention_heads == 2 and attention.self.all_head_size == 16
        assert attention.self.attention_head_size == 8  # a head keeps its size
    # per layer, 2 heads of 8 channels: rows + biases of q, k, v and columns of the output projection
    assert before - params(model) == LAYERS * 16 * (3 * (HIDDEN + 1) + HIDDEN)
    assert report["kept_per_layer"] == [2, 2] and report["refit"] is True


def test_removing_nothing_leaves_the_embeddings_identical():
    model = tiny_encoder()
    reference = embeddings(model, token_feeds())
    remove_ffn_neurons(model, 0.0, token_feeds())
    remove_attention_heads(model, 0.0, token_feeds())
    assert torch.equal(embeddings(model, token_feeds()), reference)


def test_kept_neurons_and_heads_are_original_slices_in_original_order():
    model = tiny_encoder()
    original = copy.deepcopy(model)
    remove_ffn_neurons(model, 0.5, refit=False)
    remove_attention_heads(model, 0.5, refit=False)
    for old, new in zip(original.backbone.encoder.layer, model.backbone.encoder.layer):
        up_old, up_new = old.intermediate.dense.weight, new.intermediate.dense.weight
        kept = [next(i for i in range(FFN) if torch.equal(up_old[i], row)) for row in up_new]
        assert kept == sorted(kept) and len(kept) == 32
        assert torch.equal(new.output.dense.weight, old.output.dense.weight[:, kept])
        q_old = old.attention.self.query.weight.reshape(HEADS, 8, HIDDEN)
        heads = [h for h in range(HEADS) if any(torch.equal(q_old[h], q) for q in new.attention.self.query.weight.reshape(2, 8, HIDDEN))]
        assert len(heads) == 2  # whole heads, not scattered channels
        channels = [h * 8 + c for h in heads for c in range(8)]
        assert torch.equal(new.attention.output.dense.weight, old.attention.output.dense.weight[:, channels])


def test_activation_aware_importance_drops_neurons_that_never_fire_however_large_their_weights():
    model = tiny_encoder()
    dead = torch.arange(0, FFN, 2)  # half the neurons: big weights, but a bias that keeps GELU at zero
    for layer in model.backbone.encoder.layer:
        with torch.no_grad():
            layer.intermediate.dense.weight[dead] *= 3
            layer.intermediate.dense.bias[dead] = -1000.0
    by_weight, by_activation = copy.deepcopy(model), copy.deepcopy(model)
    remove_ffn_neurons(by_weight, 0.5)
    remove_ffn_neurons(by_activation, 0.5, token_feeds(), refit=False)
    assert torch.all(by_weight.backbone.encoder.layer[0].intermediate.dense.bias == -1000.0)
    assert torch.all(by_activation.backbone.encoder.layer[0].intermediate.dense.bias > -1000.0)
    # the dead neurons contributed nothing, so removing them changes nothing
    assert torch.allclose(embeddings(by_activation, token_feeds()), embeddings(model, token_feeds()), atol=1e-6)


def test_refitting_the_output_projection_keeps_the_embeddings_closer_to_the_original():
    model, feeds = tiny_encoder(), token_feeds(batches=8)
    reference = embeddings(model, feeds)

    def cosine(refit: bool) -> float:
        pruned = copy.deepcopy(model)
        remove_ffn_neurons(pruned, 0.5, feeds, refit=refit)
        remove_attention_heads(pruned, 0.5, feeds, refit=refit)
        return float(torch.nn.functional.cosine_similarity(embeddings(pruned, feeds), reference).mean())

    plain, refitted = cosine(False), cosine(True)
    assert 1 - refitted < 0.7 * (1 - plain), (plain, refitted)


def test_padding_tokens_are_not_calibration_data():
    model = tiny_encoder()
    feeds = token_feeds()
    noisy = [{"input_ids": np.where(f["attention_mask"] == 1, f["input_ids"], 77), "attention_mask": f["attention_mask"]} for f in feeds]
    linears = [layer.output.dense for layer in model.backbone.encoder.layer]
    for clean, padded in zip(input_grams(model, linears, feeds), input_grams(model, linears, noisy)):
        assert torch.allclose(clean, padded, rtol=1e-5, atol=1e-6)
    assert input_grams(model, linears, feeds)[0][-1, -1] == sum(int(f["attention_mask"].sum()) for f in feeds)


def test_pruned_encoder_exports_with_dynamic_batch_and_sequence(tmp_path):
    model = tiny_encoder()
    remove_ffn_neurons(model, 0.5, token_feeds())
    remove_attention_heads(model, 0.25, token_feeds())
    path = export_encoder(model, tmp_path / "pruned.onnx")
    for feeds in (token_feeds(batches=1, size=3, length=5), token_feeds(batches=1, size=8, length=20)):
        assert np.allclose(embed_feeds(path, feeds), embeddings(model, feeds).numpy(), atol=1e-5)


@pytest.mark.parametrize("fraction", [1.0, -0.1, 1.5, "half", True])
def test_fraction_outside_zero_to_one_is_a_user_error_naming_the_field(fraction):
    with pytest.raises(UserError, match=r"remove_ffn\.fraction: .*\[0, 1\)"):
        remove_ffn_neurons(tiny_encoder(), fraction)
    with pytest.raises(UserError, match=r"remove_heads\.fraction: .*\[0, 1\)"):
        remove_attention_heads(tiny_encoder(), fraction)


def test_a_model_without_bert_layers_is_a_one_line_user_error():
    with pytest.raises(UserError, match="BERT-style") as info:
        remove_ffn_neurons(nn.Sequential(nn.Linear(4, 4)), 0.5)
    assert "\n" not in str(info.value)


def test_masked_layers_must_be_removed_before_masks_are_added():
    model = tiny_encoder()
    dense = model.backbone.encoder.layer[0].output.dense
    set_mask(dense, torch.rand(dense.weight.shape) > 0.5)
    with pytest.raises(UserError, match="before masks"):
        remove_ffn_neurons(model, 0.5)


def test_minilm_loses_half_its_ffn_and_a_quarter_of_its_heads_and_still_embeds(minilm):
    model = copy.deepcopy(minilm.model)
    sentences = ["Return the number of items in a container.", "Open a file and return a stream.", "Sort the list in place."]
    batch = minilm.tokenizer(sentences, padding=True, return_tensors="np")
    feeds = [{name: batch[name].astype(np.int64) for name in ("input_ids", "attention_mask")}]
    ffn = remove_ffn_neurons(model, 0.5, feeds)
    heads = remove_attention_heads(model, 0.25, feeds)
    assert ffn["kept_per_layer"] == [768] * 6 and heads["kept_per_layer"] == [9] * 6
    # 6 layers x (768 x (384 + 1 + 384) FFN + 96 x (3 x 385 + 384) attention)
    assert ffn["params_before"] - heads["params_after"] == 6 * (768 * 769 + 96 * (3 * 385 + 384))
    pruned, original = embeddings(model, feeds), embeddings(minilm.model, feeds)
    assert pruned.shape == (3, 384) and torch.allclose(pruned.norm(dim=1), torch.ones(3))
    assert torch.nn.functional.cosine_similarity(pruned, original).min() > 0.8


@pytest.mark.parametrize("bias", [True, False])
def test_refit_folds_a_removed_input_into_the_kept_input_it_duplicates(bias):
    from edgecompress.techniques.transformer.slicing import refit_columns

    torch.manual_seed(0)
    x = torch.randn(200, 6)
    x[:, 5] = x[:, 2]  # input 5 always equals input 2
    linear = nn.Linear(6, 3, bias=bias)
    expected = linear(x)
    sliced_error = (x[:, :5] @ linear.weight[:, :5].T + (linear.bias if bias else 0) - expected).abs().max()
    with_ones = torch.cat([x, torch.ones(200, 1)], dim=1).double()
    keep = torch.arange(5)
    refit_columns(linear, keep, with_ones.T @ with_ones)
    assert torch.all(linear.weight[:, 5] == 0)
    refitted = x[:, keep] @ linear.weight[:, keep].T + (linear.bias if bias else 0)
    error = (refitted - expected).abs().max()
    assert error < 0.01 and error < sliced_error / 100  # exact but for the small ridge


def test_an_encoder_loses_its_layer_of_lowest_block_influence_and_still_embeds(tmp_path):
    from edgecompress.techniques.transformer.depth import remove_layers

    model = tiny_encoder()
    before = params(model)
    report = remove_layers(model, count=1, feeds=token_feeds())
    assert report["layers_after"] == 1 and len(report["block_influence"]) == LAYERS
    assert report["removed_layers"] == [int(np.argmin(report["block_influence"]))]
    assert len(model.backbone.encoder.layer) == 1 and model.backbone.config.num_hidden_layers == 1
    assert before - params(model) == report["params_before"] - report["params_after"] > 0
    path = export_encoder(model, tmp_path / "one-layer.onnx")
    feeds = token_feeds(batches=1)
    assert np.allclose(embed_feeds(path, feeds), embeddings(model, feeds).numpy(), atol=1e-5)
    from edgecompress.core.models.checkpoint import resize_to_saved, save_model_file

    save_model_file(model, tmp_path / "one-layer.safetensors")  # reloads into the original two-layer architecture
    reloaded = resize_to_saved(tiny_encoder(seed=1), tmp_path / "one-layer.safetensors")
    assert len(reloaded.backbone.encoder.layer) == 1 and reloaded.backbone.config.num_hidden_layers == 1
    assert torch.equal(embeddings(reloaded, feeds), embeddings(model, feeds))
