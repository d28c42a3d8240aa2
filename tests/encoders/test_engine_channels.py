"""The engine's channel pattern (Torch-Pruning) on a BERT encoder: FFN neurons really go, the rest stays exact.

Attention heads are removed by `encoders/structured.py` instead: Torch-Pruning would need the head counts
passed in and patched back by hand (FINDINGS sec. 6).
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from edgecompress.families.encoder.artifact import embed_feeds
from edgecompress.families.encoder.batches import token_batches
from edgecompress.families.encoder.export import export_encoder
from edgecompress.families.encoder.model_dir import load_encoder
from edgecompress.orchestration.pipeline.stages import Prune
from edgecompress.techniques.prune.engine import prune_model

SENTENCES = ["Return the value.", "Open a file and read it line by line.", "Raise an error if missing.", "Sort the keys."]


def _embed(model, feeds) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([model(torch.from_numpy(f["input_ids"]), torch.from_numpy(f["attention_mask"])) for f in feeds])


def test_channel_pattern_removes_half_the_ffn_neurons_of_each_bert_layer(tiny_model_dir, tmp_path):
    loaded = load_encoder(tiny_model_dir)
    model, original = loaded.model, copy.deepcopy(loaded.model)
    feeds = token_batches(loaded.tokenizer, SENTENCES, 2, 32)
    example = {name: torch.from_numpy(value) for name, value in feeds[0].items()}
    config = Prune(pattern="channel", amount=0.5, layers=("*.intermediate.dense",), types=("Linear",), keep_classifier=False)
    prune_model(model, config, example, train=lambda *a, **k: None)

    silenced = copy.deepcopy(original)  # the original with the removed neurons' outputs forced to zero
    for layer, before, quiet in zip(model.backbone.encoder.layer, original.backbone.encoder.layer, silenced.backbone.encoder.layer):
        up, down = layer.intermediate.dense, layer.output.dense
        assert (up.out_features, up.in_features, down.in_features, down.out_features) == (32, 32, 32, 32)
        assert layer.attention.self.query.weight.shape == (32, 32)  # heads untouched
        old_rows = before.intermediate.dense.weight.detach()
        kept = [int((old_rows == row).all(dim=1).nonzero()[0]) for row in up.weight.detach()]
        assert kept == sorted(kept) and len(set(kept)) == 32
        assert torch.equal(down.weight.detach(), before.output.dense.weight.detach()[:, kept])
        removed = sorted(set(range(64)) - set(kept))
        with torch.no_grad():  # GELU(0) = 0: a zero row and bias contribute nothing
            quiet.intermediate.dense.weight[removed] = 0
            quiet.intermediate.dense.bias[removed] = 0
    assert model.backbone.embeddings.word_embeddings.weight.shape == original.backbone.embeddings.word_embeddings.weight.shape
    pruned = _embed(model, feeds)
    torch.testing.assert_close(pruned, _embed(silenced, feeds), rtol=1e-5, atol=1e-5)
    assert (pruned - _embed(original, feeds)).norm() > 1e-3  # something real was removed

    path = export_encoder(model, tmp_path / "pruned.onnx")
    np.testing.assert_allclose(embed_feeds(path, feeds), pruned.numpy(), rtol=1e-4, atol=1e-5)
