"""The int8 route end to end on the one pipeline; every number in metrics.json is re-measured from the shipped files."""

import json

import numpy as np
import pytest
import torch

from edgecompress.core.errors import UserError
from edgecompress.families.encoder import route_stages
from edgecompress.families.encoder.artifact import embed, embed_feeds
from edgecompress.families.encoder.batches import token_batches
from edgecompress.families.encoder.corpus import docstring_corpus
from edgecompress.families.encoder.fidelity import fidelity
from edgecompress.orchestration.pipeline.run import compress


@pytest.fixture(scope="module")
def tiny_int8(tiny_encoder, tiny_encoder_task, tmp_path_factory):
    """The int8 route on the tiny BERT. all-MiniLM-L6-v2's own numbers (23.8 MB, cosine 0.998, overlap@10 0.936,
    exact on every CPU class) are README claims: `make bench-quick` (CI, after the tests) re-measures them on
    the same route."""
    out = tmp_path_factory.mktemp("tiny-int8")
    return compress(tiny_encoder.model, tiny_encoder_task, route_stages("int8"), out), out


def test_int8_route_shrinks_the_encoder_and_its_int8_is_exact(tiny_int8):
    result, _ = tiny_int8
    final = result.final
    assert result.baseline.artifact_bytes / final.artifact_bytes > 3.3  # 4 bytes to 1, less the scales
    assert final.details["fidelity"]["cosine_mean"] > 0.99
    assert final.details["int8"]["exactness"]["exact"]
    assert final.details["quantization"]["rounding"] == "gptq"


def test_metrics_are_measured_on_the_shipped_files(tiny_int8, tiny_encoder, tiny_encoder_task):
    result, out = tiny_int8
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("baseline", "final"):
        assert metrics[key]["artifact_bytes"] == (out / metrics[key]["artifact"]).stat().st_size
    eval_sentences = docstring_corpus(n_eval=256, n_train=512, seed=0).eval  # the fixture task's held-out sentences
    feeds = token_batches(tiny_encoder.tokenizer, eval_sentences, 32, tiny_encoder.max_length)
    reference = torch.from_numpy(embed_feeds(out / "baseline.onnx", feeds))
    shipped = torch.from_numpy(embed(out / "artifact", eval_sentences))
    assert (out / "artifact/model.onnx").read_bytes() == (out / "final.onnx").read_bytes()
    recomputed = fidelity(reference, shipped)
    assert recomputed.cosine_mean == pytest.approx(metrics["final"]["fidelity"]["cosine_mean"], abs=1e-6)
    assert recomputed.overlap_at_10 == pytest.approx(metrics["final"]["fidelity"]["overlap_at_10"], abs=0.005)
    assert metrics["final"]["score"] == metrics["final"]["fidelity"]["cosine_mean"]
    assert {"model.onnx", "tokenizer.json", "encoder.json"} <= {p.name for p in (out / "artifact").iterdir()}
    assert set(metrics["final"]["latency_ms"]) == {"batch_1", "batch_32"}


def test_int8_recipe_on_a_users_encoder_directory(tiny_model_dir, tmp_path):
    """`edgecompress run` with model: set to a Hugging Face folder and the int8 route's stages."""
    from edgecompress.orchestration.recipe import run_recipe
    from edgecompress.orchestration.recipe.schema import Recipe

    recipe = Recipe(model=str(tiny_model_dir), task="sentence-encoder", stages=route_stages("int8"))
    result = run_recipe(recipe, tmp_path / "run")
    assert result.final.artifact_bytes < result.baseline.artifact_bytes / 3
    assert result.final.details["fidelity"]["cosine_mean"] > 0.98
    assert result.final.details["quantization"]["embedding_tables"] == ["backbone.embeddings.word_embeddings.weight"]
    assert result.final.details["quantization"]["rounding"] == "gptq"


def test_same_seed_gives_byte_identical_artifacts(tiny_int8, tiny_encoder, tiny_encoder_task, tmp_path):
    first, first_out = tiny_int8
    second = compress(tiny_encoder.model, tiny_encoder_task, route_stages("int8"), tmp_path / "b")
    assert (first_out / "final.onnx").read_bytes() == (tmp_path / "b/final.onnx").read_bytes()
    assert first.final.details["fidelity"] == second.final.details["fidelity"]


def test_route_and_field_errors_name_the_setting(tmp_path):
    from edgecompress.orchestration.recipe import load_recipe

    with pytest.raises(UserError, match="unknown route 'fast'; choose one of int8, int4, structured"):
        route_stages("fast")
    path = tmp_path / "bad.yaml"
    path.write_text("model: minilm\ntask: sentence-encoder\nstages:\n  - {stage: quantize, mode: dynamic, embedding_bits: 3}\n")
    with pytest.raises(UserError, match="embedding_bits"):
        load_recipe(path)


def test_keep_worst_leaves_the_worst_matmuls_in_fp32_and_says_why(tiny_encoder, tiny_encoder_task, tmp_path):
    import onnx

    from edgecompress.families.encoder.export import export_encoder
    from edgecompress.techniques.quantize.config import QuantizeDynamic
    from edgecompress.techniques.quantize.stage import quantize_dynamic_stage
    from edgecompress.techniques.stage import ModelState, StageContext

    source = export_encoder(tiny_encoder.model, tmp_path / "float.onnx")

    def quantize(name: str, **fields):
        config = QuantizeDynamic(smooth_outliers=8, rounding="gptq", embedding_bits=8, calibration_batches=4, **fields)
        context = StageContext(tiny_encoder_task, None, tiny_encoder.model, tmp_path / name, "test")
        return quantize_dynamic_stage(config, ModelState(None, source), context)

    plain, mixed = quantize("int8.onnx"), quantize("mixed.onnx", keep_worst=3)
    details = mixed.details["quantization"]
    ranked = sorted(details["matmul_sqnr_db"].items(), key=lambda item: item[1])
    assert len(ranked) == 12  # 2 layers x (query, key, value, output, FFN in, FFN out)
    assert [k["node"] for k in details["kept_worst"]] == [name for name, _ in ranked[:3]]
    assert "4 calibration batches" in details["kept_worst_why"]

    graph = onnx.load(str(mixed.onnx_path)).graph
    floats = {t.name: t for t in graph.initializer if t.data_type == onnx.TensorProto.FLOAT and len(t.dims) == 2}
    float_matmuls = [n for n in graph.node if n.op_type == "MatMul" and n.input[1] in floats]
    assert len(float_matmuls) == 3 and [n.op_type for n in graph.node].count("MatMulInteger") == 9
    kept_weights = sum(int(np.prod(floats[n.input[1]].dims)) for n in float_matmuls)
    extra = mixed.onnx_path.stat().st_size - plain.onnx_path.stat().st_size
    assert 2.5 * kept_weights <= extra <= 3 * kept_weights, "each kept weight costs 3 more bytes, less its int8 scales"

    held_out = token_batches(tiny_encoder.tokenizer, docstring_corpus(n_eval=128, n_train=128, seed=1).eval, 32)
    reference = torch.from_numpy(embed_feeds(source, held_out))
    cosine = lambda path: fidelity(reference, torch.from_numpy(embed_feeds(path, held_out))).cosine_mean  # noqa: E731
    assert cosine(mixed.onnx_path) > cosine(plain.onnx_path)


def test_keep_float_on_the_command_line_is_checked_before_any_work(tmp_path, capsys):
    from edgecompress.cli import main

    code = main(["encoder", "int4", "--keep-float", "2", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "--keep-float: applies to route int8 only, not int4" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_validate_checks_an_encoder_recipe_whose_model_folder_is_relative_to_it(tiny_model_dir, tmp_path, monkeypatch, capsys):
    from edgecompress.cli import main

    recipe = tiny_model_dir.parent / "encoder.yaml"
    recipe.write_text(f"model: {tiny_model_dir.name}\ntask: sentence-encoder\nstages:\n  - {{stage: remove_ffn, fraction: 0.5}}\n  - {{stage: quantize, mode: dynamic}}\n")
    monkeypatch.chdir(tmp_path)  # the folder is found next to the recipe, not in the working directory
    assert main(["validate", str(recipe)]) == 0
    assert "valid" in capsys.readouterr().out
    recipe.write_text(f"model: {tiny_model_dir.name}\ntask: sentence-encoder\ntrain: {{epochs: 1}}\nstages:\n  - {{stage: distil}}\n")
    assert main(["validate", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'distill'" in err and "remove the train section" in err and err.count("\n") == 1
