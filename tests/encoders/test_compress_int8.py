"""The int8 route end to end; every number in metrics.json is re-measured from the shipped files."""

import json

import numpy as np
import pytest
import torch

from edgecompress.encoders.artifact import embed
from edgecompress.encoders.compress import compress_encoder
from edgecompress.encoders.corpus import docstring_corpus
from edgecompress.encoders.fidelity import fidelity
from edgecompress.encoders.recipe import route_recipe
from edgecompress.errors import UserError


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
