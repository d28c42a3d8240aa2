"""The pruning engine on all-MiniLM-L6-v2: unstructured and N:M masks, Wanda calibrated on token feeds (dicts)."""

from __future__ import annotations

import copy

import pytest
import torch

from edgecompress.core.masks import get_mask
from edgecompress.families.encoder.batches import token_batches
from edgecompress.families.encoder.corpus import docstring_corpus
from edgecompress.families.encoder.fidelity import fidelity
from edgecompress.orchestration.pipeline.stages import Prune
from edgecompress.techniques.prune.engine import prune_model
from edgecompress.techniques.prune.selection import select_layers

ENCODER_LINEARS = dict(layers=("backbone.encoder.layer.*",), types=("Linear",), keep_classifier=False)
MAX_TOKENS = 48  # docstring sentences are ~40 word pieces: few are cut, and the test stays fast


@pytest.fixture(scope="module")
def feeds(minilm):
    """(calibration feeds: 32 training sentences, evaluation feeds: 64 held-out ones)."""
    corpus = docstring_corpus(n_eval=64, n_train=32)
    return (
        token_batches(minilm.tokenizer, corpus.train, 32, MAX_TOKENS),
        token_batches(minilm.tokenizer, corpus.eval, 32, MAX_TOKENS),
    )


@pytest.fixture(scope="module")
def reference(minilm, feeds):
    return embed(minilm.model, feeds[1])


def embed(model, feeds) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([model(torch.from_numpy(f["input_ids"]), torch.from_numpy(f["attention_mask"])) for f in feeds])


def pruned(minilm, feeds, **settings):
    model = copy.deepcopy(minilm.model)
    prune_model(model, Prune(**ENCODER_LINEARS, **settings), None, train=lambda *a, **k: None, batches=feeds[0])
    return model


def test_wanda_at_half_sparsity_keeps_embeddings_closer_than_magnitude(minilm, feeds, reference):
    magnitude = pruned(minilm, feeds, pattern="unstructured", criterion="l1", amount=0.5)
    wanda = pruned(minilm, feeds, pattern="unstructured", criterion="wanda", amount=0.5)
    cos_magnitude = fidelity(reference, embed(magnitude, feeds[1])).cosine_mean
    cos_wanda = fidelity(reference, embed(wanda, feeds[1])).cosine_mean
    print(f"mean cosine at 50%: magnitude {cos_magnitude:.3f}, wanda {cos_wanda:.3f}")
    assert cos_wanda > cos_magnitude + 0.05
    assert 0.8 < cos_wanda < 0.95 and cos_magnitude < 0.8
    layers = select_layers(wanda, **ENCODER_LINEARS)
    assert len(layers) == 6 * 6  # q, k, v, attention output, FFN up and down in each of 6 layers
    for name, layer in layers.items():
        removed = int((get_mask(layer) == 0).sum())
        assert abs(removed - 0.5 * layer.weight.numel()) <= 1, name
    assert get_mask(wanda.backbone.embeddings.word_embeddings) is None  # embedding tables are not Linear


def test_wanda_two_of_four_keeps_two_weights_in_every_group_chosen_by_activations(minilm, feeds):
    wanda = pruned(minilm, feeds, pattern="nm", criterion="wanda", n=2, m=4)
    magnitude = pruned(minilm, feeds, pattern="nm", criterion="l1", n=2, m=4)
    differs = []
    for name, layer in select_layers(wanda, **ENCODER_LINEARS).items():
        mask = get_mask(layer)
        assert torch.all(mask.reshape(layer.weight.shape[0], -1, 4).sum(dim=2) == 2), name
        differs.append((mask != get_mask(magnitude.get_submodule(name))).float().mean().item())
    assert 0.05 < sum(differs) / len(differs) < 0.6  # input norms move a real share of the choices
