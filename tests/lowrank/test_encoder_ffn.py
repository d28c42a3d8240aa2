import json

import numpy as np
import torch

from edgecompress.core.measure.params import count_params
from edgecompress.families.encoder.export import export_encoder
from edgecompress.families.encoder.model_dir import bundled_model_dir, load_encoder
from edgecompress.runtime.sessions import make_session
from edgecompress.techniques.lowrank.budget import LayerShape, allocate_ranks
from edgecompress.techniques.lowrank.factorize import factorize

FFN = ("*.intermediate.dense", "*.layer.?.output.dense")  # not attention.output.dense


def _ffn_params(model) -> int:
    return sum(count_params(m) for n, m in model.named_modules() if n.endswith(("intermediate.dense", "output.dense")) and "attention" not in n)


def _factorize_ffn(model, keep: float) -> tuple[int, int]:
    before = _ffn_params(model)
    total = count_params(model)
    report = factorize(model, layers=FFN, keep=keep, keep_classifier=False)
    assert all("attention" not in name for name in report)
    return before, count_params(model) - (total - before)


def test_tiny_bert_ffn_meets_the_budget_and_exports_to_onnx(tiny_model_dir, tmp_path):
    loaded = load_encoder(tiny_model_dir)
    model = loaded.model.eval()
    before, after = _factorize_ffn(model, keep=0.5)
    assert abs(after - 0.5 * before) <= 0.01 * 0.5 * before
    session = make_session(export_encoder(model, tmp_path / "ffn.onnx"))
    batch = loaded.tokenizer(["low rank layers", "a longer sentence about factorized feed-forward layers"], padding=True, return_tensors="pt")
    feeds = {"input_ids": batch["input_ids"].numpy(), "attention_mask": batch["attention_mask"].numpy()}
    ours = session.run(None, feeds)[0]
    with torch.no_grad():
        np.testing.assert_allclose(ours, model(batch["input_ids"], batch["attention_mask"]).numpy(), atol=1e-4)


def test_minilm_ffn_meets_the_budget():
    """MiniLM's FFN shapes from its config: loading and factorizing 22M parameters takes ~30 s on a busy 2-core
    machine, and the count of a factorized layer is exactly LayerShape.params (the tests above check that)."""
    config = json.loads((bundled_model_dir() / "config.json").read_text())
    hidden, inner, layers = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
    assert (hidden, inner, layers) == (384, 1536, 6)
    shapes = {}
    for i in range(layers):
        shapes[f"{i}.intermediate"] = LayerShape(inner, hidden, inner)
        shapes[f"{i}.output"] = LayerShape(hidden, inner, hidden)
    before = sum(s.dense for s in shapes.values())
    for keep in (0.25, 0.5, 0.75):
        ranks = allocate_ranks(shapes, keep)
        after = sum(shapes[n].params(r) for n, r in ranks.items())
        assert abs(after - keep * before) <= 0.01 * keep * before
