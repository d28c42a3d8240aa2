"""The int8 route end to end; every number in metrics.json is re-measured from the shipped files."""

import json

import numpy as np
import pytest
import torch

from edgecompress.core.errors import UserError
from edgecompress.families.encoder.artifact import embed
from edgecompress.families.encoder.compress import compress_encoder
from edgecompress.families.encoder.corpus import docstring_corpus
from edgecompress.families.encoder.fidelity import fidelity
from edgecompress.families.encoder.recipe import route_recipe


@pytest.fixture(scope="module")
def minilm_int8(minilm, tmp_path_factory):
    out = tmp_path_factory.mktemp("minilm-int8")
    return compress_encoder(route_recipe("int8"), out, encoder=minilm), out


def test_minilm_int8_meets_the_acceptance_targets(minilm_int8):
    """Issue #7: <= 24 MB, mean cosine >= 0.995, overlap@10 >= 0.93 (ORT's own: 0.9927 / 0.891 / 23.4 MB)."""
    result, out = minilm_int8
    final = result.final
    assert final["artifact_bytes"] <= 24_000_000
    assert final["fidelity"]["cosine_mean"] >= 0.995
    assert final["fidelity"]["overlap_at_10"] >= 0.93
    assert result.to_json()["summary"]["size_ratio"] > 3.7


def test_metrics_are_measured_on_the_shipped_files(minilm_int8):
    result, out = minilm_int8
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("baseline", "final"):
        assert metrics[key]["artifact_bytes"] == (out / metrics[key]["artifact"]).stat().st_size
    eval_sentences = docstring_corpus(n_eval=2000, n_train=4000, seed=0).eval
    reference = torch.from_numpy(embed(out / "baseline", eval_sentences))
    shipped = torch.from_numpy(embed(out / "artifact", eval_sentences))
    recomputed = fidelity(reference, shipped)
    assert recomputed.cosine_mean == pytest.approx(metrics["final"]["fidelity"]["cosine_mean"], abs=1e-9)
    assert recomputed.overlap_at_10 == metrics["final"]["fidelity"]["overlap_at_10"]
    assert not (out / "work").exists()
    assert {"model.onnx", "tokenizer.json", "encoder.json"} <= {p.name for p in (out / "artifact").iterdir()}


def test_int8_route_on_a_users_encoder_directory(tiny_model_dir, tmp_path):
    result = compress_encoder(route_recipe("int8", train_sentences=64), tmp_path, model_dir=tiny_model_dir)
    assert result.final["artifact_bytes"] < result.baseline["artifact_bytes"] / 3
    assert result.final["fidelity"]["cosine_mean"] > 0.98
    assert result.steps["quantize"]["embedding_tables"] == ["backbone.embeddings.word_embeddings.weight"]


def test_same_seed_gives_byte_identical_artifacts(tiny_model_dir, tmp_path):
    recipe = route_recipe("int8", train_sentences=64)
    first = compress_encoder(recipe, tmp_path / "a", model_dir=tiny_model_dir)
    second = compress_encoder(recipe, tmp_path / "b", model_dir=tiny_model_dir)
    assert (tmp_path / "a/artifact/model.onnx").read_bytes() == (tmp_path / "b/artifact/model.onnx").read_bytes()
    assert first.final["fidelity"] == second.final["fidelity"]


def test_recipe_errors_name_the_setting():
    with pytest.raises(UserError, match="quantize: Input should be 'none', 'int8' or 'int4'"):
        route_recipe("int8", quantize="int3")
    with pytest.raises(UserError, match="unknown route 'fast'"):
        route_recipe("fast")


@pytest.fixture(scope="module")
def tiny_float_onnx(tiny_model_dir, tmp_path_factory):
    """The tiny BERT exported, with token batches for calibration and for scoring (disjoint sentences)."""
    from edgecompress.families.encoder.batches import token_batches
    from edgecompress.families.encoder.export import export_encoder
    from edgecompress.families.encoder.model_dir import load_encoder

    loaded = load_encoder(tiny_model_dir)
    path = export_encoder(loaded.model, tmp_path_factory.mktemp("tiny") / "float.onnx")
    corpus = docstring_corpus(n_eval=128, n_train=128, seed=0)
    return path, token_batches(loaded.tokenizer, corpus.train, 32), token_batches(loaded.tokenizer, corpus.eval, 32)


def test_keep_float_leaves_the_worst_matmuls_in_fp32_and_says_why(tiny_float_onnx, tmp_path):
    import onnx

    from edgecompress.families.encoder.artifact import embed_feeds
    from edgecompress.families.encoder.quantize import quantize_encoder_int8

    source, calibration, held_out = tiny_float_onnx
    plain = quantize_encoder_int8(source, tmp_path / "int8.onnx", calibration)
    mixed = quantize_encoder_int8(source, tmp_path / "mixed.onnx", calibration, keep_float=3)
    details = mixed.details
    ranked = sorted(details["matmul_sqnr_db"].items(), key=lambda item: item[1])
    assert len(ranked) == 12  # 2 layers x (query, key, value, output, FFN in, FFN out)
    assert [k["node"] for k in details["kept_float"]] == [name for name, _ in ranked[:3]]
    assert "4 calibration batches" in details["kept_float_why"]

    graph = onnx.load(str(mixed.path)).graph
    floats = {t.name: t for t in graph.initializer if t.data_type == onnx.TensorProto.FLOAT and len(t.dims) == 2}
    float_matmuls = [n for n in graph.node if n.op_type == "MatMul" and n.input[1] in floats]
    assert len(float_matmuls) == 3 and [n.op_type for n in graph.node].count("MatMulInteger") == 9
    kept_weights = sum(int(np.prod(floats[n.input[1]].dims)) for n in float_matmuls)
    extra = mixed.path.stat().st_size - plain.path.stat().st_size
    assert 2.5 * kept_weights <= extra <= 3 * kept_weights, "each kept weight costs 3 more bytes, less its int8 scales"

    reference = torch.from_numpy(embed_feeds(source, held_out))
    cosine = lambda path: fidelity(reference, torch.from_numpy(embed_feeds(path, held_out))).cosine_mean  # noqa: E731
    assert cosine(mixed.path) > cosine(plain.path)


def test_keep_float_is_an_int8_setting():
    with pytest.raises(UserError, match="keep_float applies to quantize int8 only, not int4"):
        route_recipe("int4", keep_float=2)
    with pytest.raises(UserError, match="keep_float: Input should be greater than or equal to 0"):
        route_recipe("int8", keep_float=-1)


def test_keep_float_on_the_command_line_is_checked_before_any_work(tmp_path, capsys):
    from edgecompress.cli import main

    code = main(["encoder", "int4", "--keep-float", "2", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "keep_float applies to quantize int8 only" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()
