"""Decoders end to end on the one pipeline (`edgecompress llm`): every number in metrics.json is re-measured from
the shipped files, and the exported key/value-cache graph generates the tokens torch generates."""

import json

import numpy as np
import pytest
import torch

from edgecompress.cli import main
from edgecompress.families.lm.artifact import SIDE_BY_SIDE_PROMPTS, OpenArtifact, generate_ids, open_artifact
from edgecompress.families.lm.model_dir import load_decoder
from edgecompress.families.lm.task import language_model_task
from edgecompress.runtime.sessions import make_session


@pytest.fixture(scope="module")
def llama_int8(tiny_llama_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("llm") / "int8"
    assert main(["llm", "int8", "--model-dir", str(tiny_llama_dir), "--out", str(out)]) == 0
    return out, json.loads((out / "metrics.json").read_text())


def test_int8_route_shrinks_the_decoder_and_keeps_its_predictions(llama_int8):
    out, metrics = llama_int8
    base, final = metrics["baseline"], metrics["final"]
    assert metrics["task"] == "language-model" and metrics["metric"]["higher_is_better"] is False
    assert final["artifact_bytes"] == (out / "final.onnx").stat().st_size
    # the tied token table (86% of this toy model) is stored twice in int8: as the table and as the output layer
    assert final["artifact_bytes"] < 0.55 * base["artifact_bytes"]
    assert final["quantization"]["untied_weights"] and final["quantization"]["embedding_tables"]
    assert final["score"] == pytest.approx(base["score"], rel=0.02)
    assert final["agreement"]["top1"] >= 0.9 and 0 <= final["agreement"]["kl_mean"] < 0.01
    assert base["agreement"] == {**base["agreement"], "top1": 1.0, "kl_mean": 0.0}
    assert final["int8"]["exactness"]["exact"]
    assert set(final["latency_ms"]) == {"batch_1"}
    context = json.loads((out / "artifact/lm.json").read_text())["context"]
    for measured in (base, final):  # the prompt step, timed on each file in the same run
        first = measured["time_to_first_token"]
        assert first["prompt_tokens"] == min(128, context) and 0 < first["p25_ms"] <= first["median_ms"] <= first["p75_ms"]
    assert (out / "artifact/model.onnx").read_bytes() == (out / "final.onnx").read_bytes()
    assert {"model.onnx", "lm.json", "tokenizer.json"} <= {p.name for p in (out / "artifact").iterdir()}


def test_fixed_prompts_are_continued_by_the_original_and_the_compressed_file_side_by_side(llama_int8, tiny_llama_dir):
    out, _ = llama_int8
    rows = json.loads((out / "generations.json").read_text())
    assert [row["prompt"] for row in rows] == list(SIDE_BY_SIDE_PROMPTS)
    artifact = open_artifact(out / "artifact")
    prompt = artifact.tokenizer(rows[0]["prompt"], add_special_tokens=False)["input_ids"]
    for name, file in (("original", "baseline.onnx"), ("compressed", "final.onnx")):
        session = OpenArtifact(make_session(out / file), artifact.tokenizer, artifact.cache, artifact.context, artifact.eos_token_id)
        tokens, _, _ = generate_ids(session, prompt, 32, lambda logits: int(np.argmax(logits)), artifact.eos_token_id)
        assert rows[0][name] == artifact.tokenizer.decode(tokens)


def test_report_shows_the_generations_side_by_side(llama_int8):
    from markupsafe import escape  # the report's template escapes as jinja does

    out, _ = llama_int8
    page = (out / "report.html").read_text()
    assert "<h2>What the models write</h2>" in page and "<th>original</th><th>compressed</th>" in page
    for row in json.loads((out / "generations.json").read_text()):
        cells = "".join(f'<td class="text"><pre>{escape(row[name])}</pre></td>' for name in ("prompt", "original", "compressed"))
        assert f"<tr>{cells}</tr>" in page


def test_perplexity_in_metrics_is_the_shipped_files(llama_int8, tiny_llama_dir):
    """Recomputed here with numpy from ONNX Runtime's logits on the task's held-out windows."""
    out, metrics = llama_int8
    task = language_model_task(load_decoder(tiny_llama_dir), seed=0)
    for key in ("baseline", "final"):
        session = make_session(out / metrics[key]["artifact"])
        nll = []
        for inputs, targets in task.eval_loader:
            logits = session.run(["logits"], {name: value.numpy() for name, value in inputs.items()})[0].astype(np.float64)
            labels = targets[..., 0].long().numpy()
            shifted = logits - logits.max(-1, keepdims=True)
            logp = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
            nll.append(-np.take_along_axis(logp, labels[..., None], -1).ravel())
        assert np.exp(np.concatenate(nll).mean()) == pytest.approx(metrics[key]["score"], rel=1e-5)


def test_kv_cache_export_generates_torchs_greedy_tokens(llama_int8, tiny_llama_dir):
    """Issue #20: greedy tokens from the ORT export with its cache equal torch's (no cache) for 64 tokens, fp32."""
    out, _ = llama_int8
    decoder = load_decoder(tiny_llama_dir)
    artifact = open_artifact(out / "artifact")
    fp32 = OpenArtifact(make_session(out / "baseline.onnx"), artifact.tokenizer, artifact.cache, artifact.context, artifact.eos_token_id)
    prompt = decoder.tokenizer("def read_config(path):\n    with open(", add_special_tokens=False)["input_ids"]
    onnx_tokens, _, _ = generate_ids(fp32, prompt, 64, lambda logits: int(np.argmax(logits)), eos=None)
    ids = torch.tensor([prompt])
    with torch.no_grad():
        for _ in range(64):
            ids = torch.cat([ids, decoder.model(ids)[:, -1:].argmax(-1)], dim=1)
    assert onnx_tokens == ids[0, len(prompt):].tolist()


def test_generate_runs_the_artifact_and_refuses_a_prompt_beyond_the_context(llama_int8, capsys):
    out, _ = llama_int8
    assert main(["generate", str(out / "artifact"), "import os\n", "--max-new-tokens", "8", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["prompt"] == "import os\n" and 1 <= len(result["tokens"]) <= 8 and result["first_token_ms"] > 0
    assert main(["generate", str(out / "artifact"), "x = 1\n" * 200, "--max-new-tokens", "64"]) == 2
    assert "exceed the model's context of 256" in capsys.readouterr().err


@pytest.mark.parametrize("family, route", [("qwen2", "int4"), ("gpt2", "int8")])
def test_a_users_decoder_directory_runs_end_to_end(family, route, request, tmp_path):
    """Issue #20: Llama- (above), Qwen2- and GPT-2-style directories through `--model-dir`."""
    model_dir = request.getfixturevalue(f"tiny_{family}_dir")
    out = tmp_path / "run"
    assert main(["llm", route, "--model-dir", str(model_dir), "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["final"]["artifact_bytes"] < 0.6 * metrics["baseline"]["artifact_bytes"]  # tied table: two low-bit copies
    assert metrics["final"]["agreement"]["top1"] >= 0.8
    assert metrics["final"]["score"] == pytest.approx(metrics["baseline"]["score"], rel=0.05)


def test_a_gpt2_decoder_goes_ternary_with_its_conv1d_layers_loaded_as_linear(tiny_gpt2_dir, tmp_path):
    """GPT-2's Conv1D layers are loaded as the nn.Linear they compute (families/lm/conv1d.py): transformers'
    logits unchanged, and every stage selects them: here ternary weights in each of the block's 4 projections."""
    import onnx
    from transformers import AutoModelForCausalLM

    model = load_decoder(tiny_gpt2_dir).model
    assert not [m for m in model.modules() if type(m).__name__ == "Conv1D"]
    reference = AutoModelForCausalLM.from_pretrained(tiny_gpt2_dir, local_files_only=True).eval()
    ids = torch.tensor([[5, 17, 201, 42, 7]])
    with torch.no_grad():
        assert torch.allclose(model(ids, torch.ones_like(ids)), reference(ids).logits, atol=1e-5)
    out = tmp_path / "run"
    assert main(["llm", "ternary", "--model-dir", str(tiny_gpt2_dir), "--out", str(out), "--distill-seconds", "0"]) == 0
    ternary = [w for w in _matmul_integer_weights(onnx.load(str(out / "final.onnx"))) if w.shape[1] != 4096]
    assert sorted(w.shape for w in ternary) == [(32, 32), (32, 96), (32, 128), (128, 32)]  # c_attn, c_proj, c_fc, c_proj
    for w in ternary:
        for channel in w.T:
            assert set(np.unique(channel).tolist()) <= {-64, 0, 64}


def test_a_decoder_without_half_its_ffn_neurons_exports_with_its_cache_and_generates_torchs_tokens(tiny_llama_dir, tmp_path):
    """remove_ffn on a decoder through a recipe: the shipped file's FFN matrices are half as wide, and its
    key/value-cache graph still generates what the pruned torch model generates."""
    import onnx

    from edgecompress.orchestration.recipe import run_recipe
    from edgecompress.orchestration.recipe.schema import Recipe
    from edgecompress.techniques.transformer.config import RemoveFfn

    recipe = Recipe(model=str(tiny_llama_dir), task="language-model", stages=[RemoveFfn(fraction=0.5)])
    result = run_recipe(recipe, tmp_path / "run")
    assert result.final.details["remove_ffn"]["kept_per_layer"] == [32, 32]
    shapes = {tuple(t.dims) for t in onnx.load(str(tmp_path / "run/final.onnx")).graph.initializer
              if not t.name.endswith(".qkv_weight")}  # q, k and v packed side by side are 32 + 16 + 16 wide too
    assert (32, 64) not in shapes and (64, 32) not in shapes and (32, 32) in shapes  # no 64-wide FFN matrix is left
    assert result.final.params < result.baseline.params and result.final.score < 2 * result.baseline.score

    artifact = open_artifact(tmp_path / "run/artifact")
    prompt = artifact.tokenizer("import os\n", add_special_tokens=False)["input_ids"]
    tokens, _, _ = generate_ids(artifact, prompt, 16, lambda logits: int(np.argmax(logits)), None)
    ids = torch.tensor([prompt])
    model = result.final_torch_model.eval()
    with torch.no_grad():
        for _ in range(16):
            ids = torch.cat([ids, model(ids, torch.ones_like(ids)).argmax(-1)[:, -1:]], dim=1)
    assert tokens == ids[0, len(prompt):].tolist()


@pytest.fixture(scope="module")
def llama_ternary(tiny_llama_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("llm") / "ternary"
    assert main(["llm", "ternary", "--model-dir", str(tiny_llama_dir), "--out", str(out), "--distill-seconds", "3"]) == 0
    return out, json.loads((out / "metrics.json").read_text())


def _matmul_integer_weights(model) -> list[np.ndarray]:
    """The stored int8 weight [inputs, outputs] of each MatMulInteger node (the compacted file has no node names)."""
    from onnx import numpy_helper

    stored = {t.name: t for t in model.graph.initializer}
    return [numpy_helper.to_array(stored[n.input[1]]) for n in model.graph.node if n.op_type == "MatMulInteger"]


def test_ternary_route_ships_three_values_per_output_channel_and_keeps_the_table_out_of_the_grid(llama_ternary):
    import onnx

    out, metrics = llama_ternary
    model = onnx.load(str(out / "final.onnx"))
    weights = _matmul_integer_weights(model)
    output_layer = [w for w in weights if w.shape[1] == 4096]  # [hidden, vocabulary]
    ternary = [w for w in weights if w.shape[1] != 4096]
    assert len(output_layer) == 1 and len(ternary) == 2 * 5  # the tied output layer, and 5 MatMuls per block (q, k, v packed in one)
    assert len(np.unique(output_layer[0])) > 3  # the tied output layer: ordinary int8, not ternary
    for w in ternary:
        for channel in w.T:  # ORT's per-channel axis of a MatMul weight is its last (the outputs)
            levels = set(np.unique(channel).tolist())
            assert len(levels) <= 3 and levels <= {-64, 0, 64}  # {-a, 0, +a} -> the int8 scale's +-64 (portable: 7 bits)
    tables = [n for n in model.graph.node if n.op_type == "GatherBlockQuantized"]
    assert len(tables) == 1 and onnx.helper.get_attribute_value(next(a for a in tables[0].attribute if a.name == "bits")) == 4
    final = metrics["final"]
    assert final["int8"]["target"] == "portable" and final["int8"]["weight_bits"] == 7
    assert final["int8"]["exactness"]["exact"]
    assert [stage["name"] for stage in metrics["stages"]] == ["qat", "distill", "quantize"]
    assert metrics["stages"][1]["distill"]["stopped_by_budget"]  # --distill-seconds 3 set the budget


def test_ternary_route_packs_its_weights_near_their_entropy_and_below_the_int8_route(llama_ternary, llama_int8, tmp_path):
    import onnx

    from edgecompress.delivery import pack

    out, metrics = llama_ternary
    info = pack(out / "final.onnx", tmp_path / "final.ecz")
    stored = {n.input[1] for n in onnx.load(str(out / "final.onnx")).graph.node if n.op_type == "MatMulInteger"}
    ternary = [t for t in info.tensors if t.name in stored and t.elements != 32 * 4096]
    assert ternary and all(t.bytes_per_param <= 2 / 8 for t in ternary)  # <= 2 bits per weight (~1.6: the entropy)
    # the ternary layers are 12% of this toy model's weights, the token table (4 bits here, 8 in int8) most of the rest
    assert metrics["final"]["storage_bytes"] < 0.8 * llama_int8[1]["final"]["storage_bytes"]


def test_sparse24_route_ships_two_zeros_in_every_four_weights_and_they_shrink_only_the_packed_file(llama_int8, tiny_llama_dir, tmp_path):
    """The 2:4 masks survive distillation and int8 (a zero quantizes to the int8 zero); ONNX Runtime stores them
    densely, so the ONNX file is the int8 route's size and only the packed .ecz gets smaller."""
    import onnx

    from edgecompress.delivery import pack

    out = tmp_path / "sparse24"
    assert main(["llm", "sparse24", "--model-dir", str(tiny_llama_dir), "--out", str(out), "--distill-seconds", "3"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert [stage["name"] for stage in metrics["stages"]] == ["sparsegpt", "distill", "quantize"]
    packed_layers = {}
    for name, run in (("sparse24", out), ("int8", llama_int8[0])):
        model = onnx.load(str(run / "final.onnx"))
        weights = [w for w in _matmul_integer_weights(model) if w.shape[1] != 4096]  # not the tied output layer
        assert len(weights) == 2 * 5  # 7 Linear layers per block, q, k and v packed in one MatMul
        if name == "sparse24":
            for w in weights:  # [inputs, outputs]: groups of 4 consecutive inputs of each output channel
                assert ((w.T.reshape(w.shape[1], -1, 4) == 0).sum(-1) >= 2).all()
        stored = {n.input[1] for n in model.graph.node if n.op_type == "MatMulInteger"}
        info = pack(run / "final.onnx", tmp_path / f"{name}.ecz")
        packed_layers[name] = sum(t.packed_bytes for t in info.tensors if t.name in stored and t.elements != 32 * 4096)
    assert metrics["final"]["artifact_bytes"] == llama_int8[1]["final"]["artifact_bytes"]  # zeros stored densely
    assert packed_layers["sparse24"] < 0.85 * packed_layers["int8"], packed_layers
    assert metrics["final"]["storage_bytes"] < llama_int8[1]["final"]["storage_bytes"]


def test_the_structured_route_refuses_a_decoder_too_shallow_for_it_before_any_work(tiny_llama_dir, tmp_path, capsys):
    out = tmp_path / "structured"
    assert main(["llm", "structured", "--model-dir", str(tiny_llama_dir), "--out", str(out)]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert errors == ["error: remove_layers.count: the model has 2 layers; remove from 1 to 1 of them, got 2"]
    assert not out.exists()
