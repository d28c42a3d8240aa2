"""The int4 and structured routes end to end on a tiny BERT; their MiniLM numbers are in BENCHMARKS.md."""

import onnx

from edgecompress.families.encoder.compress import compress_encoder
from edgecompress.families.encoder.recipe import route_recipe


def _op_types(path) -> set[str]:
    return {n.op_type for n in onnx.load(str(path)).graph.node}


def test_int4_route_ships_int4_weights_and_embeddings(tiny_model_dir, tmp_path):
    result = compress_encoder(route_recipe("int4", distill_seconds=0, train_sentences=64), tmp_path, model_dir=tiny_model_dir)
    ops = _op_types(tmp_path / "artifact/model.onnx")
    assert {"MatMulNBits", "GatherBlockQuantized"} <= ops
    assert "MatMulInteger" not in ops
    # 30522 x 32 word embeddings dominate: 4 bits + one fp32 scale per 32 values = 0.625 B/value vs 4
    assert result.baseline["artifact_bytes"] / result.final["artifact_bytes"] > 5
    assert result.steps["qat"] == {"linear": 12, "embedding": 1}


def test_distillation_brings_a_pruned_encoder_closer_to_the_original(tiny_model_dir, tmp_path):
    recipe = dict(ffn_fraction=0.75, train_sentences=512)
    without = compress_encoder(route_recipe("structured", distill_seconds=0, **recipe), tmp_path / "a", model_dir=tiny_model_dir)
    # epochs, not the clock, end this run: the budget is far above the ~2 s it needs, even on a loaded machine
    distilled = route_recipe("structured", distill_seconds=3600, distill_epochs=20, **recipe)
    with_distill = compress_encoder(distilled, tmp_path / "b", model_dir=tiny_model_dir)
    assert not with_distill.steps["distill"]["stopped_by_budget"]
    assert with_distill.steps["distill"]["steps"] > 0
    before, after = without.final["fidelity"]["cosine_mean"], with_distill.final["fidelity"]["cosine_mean"]
    assert 1 - after < (1 - before) * 0.8, (before, after)
    assert with_distill.final["params"] == without.final["params"]


def test_structured_route_removes_half_the_ffn_neurons(tiny_model_dir, tmp_path):
    result = compress_encoder(route_recipe("structured", distill_seconds=0, train_sentences=64), tmp_path, model_dir=tiny_model_dir)
    # each of 2 layers: 64 -> 32 FFN neurons, 2 x (32 x 32 + 32 + 32 x 32) fewer parameters
    assert result.baseline["params"] - result.final["params"] == 2 * (32 * 32 + 32 + 32 * 32)
    assert result.final["fidelity"]["cosine_mean"] < 1.0
