"""Attention heads and whole layers of a decoder removed for real (remove_heads, remove_layers): the matrices and
the graph really shrink, the key/value-cache export generates the pruned torch model's greedy tokens, the
activation-aware choices beat the blind ones on KL to the original, and bad settings stop with one line."""

import copy
import json

import numpy as np
import pytest
import torch

import edgecompress as ec
from edgecompress.cli import main
from edgecompress.core.errors import UserError
from edgecompress.families.lm.artifact import OpenArtifact, generate_ids, open_artifact
from edgecompress.families.lm.decoder import CausalLM
from edgecompress.families.lm.export import export_decoder
from edgecompress.families.lm.model_dir import load_decoder
from edgecompress.runtime.sessions import make_session
from edgecompress.techniques.transformer.config import RemoveHeads, RemoveLayers
from edgecompress.techniques.transformer.depth import remove_layers
from edgecompress.techniques.transformer.structured import remove_attention_heads
from tests.lm.conftest import kl_to_original

PROMPT = [5, 17, 201, 42, 7, 99]


def _torch_greedy(model, prompt: list[int], steps: int) -> list[int]:
    ids = torch.tensor([prompt])
    model.eval()
    with torch.no_grad():
        for _ in range(steps):
            ids = torch.cat([ids, model(ids, torch.ones_like(ids)).argmax(-1)[:, -1:]], dim=1)
    return ids[0, len(prompt):].tolist()


def _exported_greedy(model: CausalLM, path, prompt: list[int], steps: int) -> list[int]:
    """The key/value-cache loop `generate` runs, on `model` exported to `path`."""
    export_decoder(model, path)
    session = OpenArtifact(make_session(path), None, model.cache, 256, 0)
    return generate_ids(session, prompt, steps, lambda logits: int(np.argmax(logits)), None)[0]


def _random_decoder(kind: str, **sizes) -> CausalLM:
    import transformers

    torch.manual_seed(0)
    config = getattr(transformers, f"{kind}Config")(vocab_size=300, hidden_size=32, intermediate_size=64, max_position_embeddings=256, **sizes)
    return CausalLM(getattr(transformers, f"{kind}ForCausalLM")(config)).eval()


def _token_feeds(batches: int = 4) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    return [{"input_ids": rng.integers(1, 300, (4, 24)), "attention_mask": np.ones((4, 24), dtype=np.int64)} for _ in range(batches)]


def test_query_heads_go_within_each_key_value_group_and_the_cache_keeps_its_shape(sharp_llama):
    """2 query heads share each key/value head: 0.5 removes one per group; k and v (the cache) stay whole."""
    decoder, task = sharp_llama
    pruned = ec.apply(decoder.model, RemoveHeads(fraction=0.5), task)
    for layer in pruned.lm.model.layers:
        att = layer.self_attn
        assert (att.q_proj.weight.shape, att.k_proj.weight.shape, att.v_proj.weight.shape, att.o_proj.weight.shape) == (
            (16, 32), (16, 32), (16, 32), (32, 16))
        assert att.num_key_value_groups == 1
    config = pruned.lm.config
    assert (config.num_attention_heads, config.num_key_value_heads, config.head_dim) == (1, 1, 16)
    assert pruned.cache == decoder.model.cache  # same cache: 2 layers, 1 key/value head of 16
    assert decoder.model.lm.config.num_attention_heads == 2  # the original is left whole


def test_a_checkpoint_without_heads_reloads_into_the_original_architecture_with_its_head_counts(sharp_llama, tmp_path):
    """What --resume and model.safetensors do: the original architecture resized to the saved shapes."""
    from edgecompress.core.models.checkpoint import resize_to_saved, save_model_file

    decoder, task = sharp_llama
    pruned = ec.apply(decoder.model, RemoveHeads(fraction=0.5), task)
    reloaded = resize_to_saved(copy.deepcopy(decoder.model), save_model_file(pruned, tmp_path / "pruned.safetensors"))
    assert [layer.self_attn.num_key_value_groups for layer in reloaded.lm.model.layers] == [1, 1]
    assert reloaded.lm.config.num_attention_heads == 1
    assert _torch_greedy(reloaded, PROMPT, 8) == _torch_greedy(pruned, PROMPT, 8)


def test_activation_ranked_heads_with_refit_keep_closer_to_the_original_than_weight_norms(sharp_llama):
    decoder, task = sharp_llama
    kl = {criterion: kl_to_original(ec.apply(decoder.model, RemoveHeads(fraction=0.5, criterion=criterion), task), task)
          for criterion in ("wanda", "magnitude")}
    assert kl["wanda"] < 0.8 * kl["magnitude"], kl


def test_plain_multi_head_attention_loses_whole_heads_and_its_cache_shrinks(tmp_path):
    """One query head per key/value head: q, k and v rows and o_proj columns go together, num_key_value_heads
    follows, and the exported graph (a smaller cache) generates what the pruned torch model generates."""
    model = _random_decoder("Llama", num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4)
    report = remove_attention_heads(model, 0.5, _token_feeds())
    assert report["kept_per_layer"] == [2, 2] and report["kv_heads_per_layer"] == [2, 2] and report["query_heads_per_group"] == 1
    for layer in model.lm.model.layers:
        att = layer.self_attn
        assert [m.weight.shape for m in (att.q_proj, att.k_proj, att.v_proj, att.o_proj)] == [(16, 32)] * 3 + [(32, 16)]
    assert (model.cache.layers, model.cache.kv_heads, model.cache.head_dim) == (2, 2, 8)
    assert _exported_greedy(model, tmp_path / "mha.onnx", PROMPT, 12) == _torch_greedy(model, PROMPT, 12)


def test_a_run_refuses_to_change_a_decoders_cache_by_removing_heads(sharp_llama):
    decoder, task = sharp_llama
    model = _random_decoder("Llama", num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2)
    with pytest.raises(UserError, match="one query head per key/value head") as error:
        ec.apply(model, RemoveHeads(fraction=0.5), task)
    assert "\n" not in str(error.value)


def test_llm_structured_on_a_decoder_whose_cache_would_change_stops_before_writing_anything(tokenizer, tmp_path, capsys):
    """The same refusal in a run comes before the original is measured: exit 2, one line, no output folder."""
    from transformers import LlamaConfig

    from tests.lm.conftest import random_decoder_dir

    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                         num_key_value_heads=2, max_position_embeddings=256, eos_token_id=tokenizer.eos_token_id)
    model_dir = random_decoder_dir(config, tokenizer, tmp_path / "mha")
    assert main(["llm", "structured", "--model-dir", str(model_dir), "--out", str(tmp_path / "out")]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "remove_heads: this decoder has one query head per key/value head" in errors[0], errors
    assert not (tmp_path / "out").exists()


def test_a_fraction_that_removes_no_head_is_refused_naming_the_field(sharp_llama):
    decoder, task = sharp_llama
    with pytest.raises(UserError, match=r"remove_heads.fraction: 0.2 of 2 query heads per key/value head removes none.*at least 0.25"):
        ec.apply(decoder.model, RemoveHeads(fraction=0.2), task)


def test_block_influence_removes_the_layer_whose_loss_changes_the_predictions_least(sharp_llama):
    """Each of the two layers removed by hand, KL to the original measured: block influence picks the cheaper."""
    decoder, task = sharp_llama
    kl = {}
    for removed in (0, 1):
        model = copy.deepcopy(decoder.model)
        remove_layers(model, count=1, criterion="last") if removed == 1 else _without_first_layer(model)
        kl[removed] = kl_to_original(model, task)
    model = copy.deepcopy(decoder.model)
    report = remove_layers(model, count=1, feeds=[inputs for inputs, _ in task.train_loader])
    assert report["removed_layers"] == [min(kl, key=kl.get)] and len(report["block_influence"]) == 2
    assert min(kl.values()) < 0.8 * max(kl.values()), kl


def _without_first_layer(model) -> None:
    from edgecompress.techniques.transformer.depth import keep_layers, layer_list

    keep_layers(model, layer_list(model), [1])


def _graph(path):
    import onnx

    return onnx.load(str(path)).graph


def _run_and_generate(model_dir, stages, out, resume=False):
    """A recipe run; (result, the shipped artifact's greedy tokens, the pruned torch model's) for 16 tokens."""
    from edgecompress.orchestration.recipe import run_recipe
    from edgecompress.orchestration.recipe.schema import Recipe

    result = run_recipe(Recipe(model=str(model_dir), task="language-model", stages=stages), out, resume=resume)
    artifact = open_artifact(out / "artifact")
    prompt = artifact.tokenizer("import os\n", add_special_tokens=False)["input_ids"]
    tokens, _, _ = generate_ids(artifact, prompt, 16, lambda logits: int(np.argmax(logits)), None)
    return result, tokens, _torch_greedy(result.final_torch_model, prompt, 16)


def test_a_decoder_without_half_its_query_heads_ships_narrower_attention_and_generates_torchs_tokens(tiny_llama_dir, tmp_path):
    result, shipped, pruned = _run_and_generate(tiny_llama_dir, [RemoveHeads(fraction=0.5)], tmp_path / "run")
    assert shipped == pruned
    assert result.final.details["remove_heads"]["kept_per_layer"] == [1, 1]
    shapes = {tuple(t.dims) for t in _graph(tmp_path / "run/final.onnx").initializer}
    assert (32, 32) not in shapes and {(16, 32), (32, 16)} <= shapes  # q: 32 -> 16 outputs, o_proj: 16 inputs
    assert result.final.params == result.baseline.params - 2 * 2 * 16 * 32  # 2 layers, 16 rows of q and columns of o
    settings = json.loads((tmp_path / "run/artifact/lm.json").read_text())
    assert (settings["layers"], settings["kv_heads"], settings["head_dim"]) == (2, 1, 16)


def test_a_decoder_without_a_layer_ships_a_graph_with_one_layers_cache_and_generates_torchs_tokens(tiny_llama_dir, tmp_path, monkeypatch):
    result, shipped, pruned = _run_and_generate(tiny_llama_dir, [RemoveLayers(count=1)], tmp_path / "run")
    assert shipped == pruned
    details = result.final.details["remove_layers"]
    assert details["layers_before"] == 2 and details["layers_after"] == 1 and len(details["removed_layers"]) == 1
    past = [i.name for i in _graph(tmp_path / "run/final.onnx").input if i.name.startswith("past_key_values")]
    assert past == ["past_key_values.0.key", "past_key_values.0.value"]
    assert json.loads((tmp_path / "run/artifact/lm.json").read_text())["layers"] == 1
    rows = json.loads((tmp_path / "run/generations.json").read_text())  # the original (2 layers) fed its own cache
    assert rows and all(row["original"] and row["compressed"] for row in rows)
    final = (tmp_path / "run/final.onnx").read_bytes()
    with monkeypatch.context() as patched:  # resumed, the stage is loaded from its checkpoint, not computed again
        patched.setattr("edgecompress.techniques.transformer.stage.remove_layers", _must_not_run)
        resumed = _run_and_generate(tiny_llama_dir, [RemoveLayers(count=1)], tmp_path / "run", resume=True)[0]
    assert (tmp_path / "run/final.onnx").read_bytes() == final  # (latency is timed again: a measurement, not a result)
    assert (resumed.final.score, resumed.final.params, resumed.final.details["remove_layers"]) == (result.final.score, result.final.params, details)


def _must_not_run(*args, **kwargs):
    raise AssertionError("a finished stage was computed again on --resume")


def test_a_qwen2_decoder_loses_a_layer_with_its_layer_type_and_cache_index(tmp_path):
    model = _random_decoder("Qwen2", num_hidden_layers=3, num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=True)
    report = remove_layers(model, count=1, criterion="last")
    assert report["removed_layers"] == [2] and model.lm.config.num_hidden_layers == 2 and len(model.lm.config.layer_types) == 2
    assert [layer.self_attn.layer_idx for layer in model.lm.model.layers] == [0, 1]
    assert _exported_greedy(model, tmp_path / "qwen2.onnx", PROMPT, 8) == _torch_greedy(model, PROMPT, 8)
    assert model.cache.layers == 2


def test_a_decoder_saved_without_a_layer_reloads_into_the_original_architecture(tmp_path):
    """Layers 0 and 2 of 4 removed in two steps; the file reloads into a fresh 4-layer Qwen2: same logits, the
    layer types and cache indices of the layers left, and a 2-layer cache."""
    from edgecompress.core.models.checkpoint import resize_to_saved, save_model_file
    from edgecompress.techniques.transformer.depth import keep_layers, layer_list

    original = _random_decoder("Qwen2", num_hidden_layers=4, num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=True,
                               layer_types=["full_attention", "sliding_attention", "full_attention", "sliding_attention"], use_sliding_window=True)
    pruned = copy.deepcopy(original)
    keep_layers(pruned, layer_list(pruned), [1, 2, 3])
    keep_layers(pruned, layer_list(pruned), [0, 2])  # what is left: the original layers 1 and 3
    save_model_file(pruned, tmp_path / "pruned.safetensors")
    reloaded = resize_to_saved(copy.deepcopy(original), tmp_path / "pruned.safetensors").eval()
    config = reloaded.lm.config
    assert (config.num_hidden_layers, config.layer_types) == (2, ["sliding_attention", "sliding_attention"])
    assert [layer.self_attn.layer_idx for layer in reloaded.lm.model.layers] == [0, 1] and reloaded.cache.layers == 2
    ids = torch.tensor([PROMPT])
    with torch.no_grad():
        assert torch.equal(reloaded(ids, torch.ones_like(ids)), pruned(ids, torch.ones_like(ids)))
    with pytest.raises(UserError, match="kept_entries metadata"):  # more layers than the architecture has
        resize_to_saved(_random_decoder("Qwen2", num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1), tmp_path / "pruned.safetensors")


@pytest.mark.parametrize("stage, message", [
    ("{stage: remove_layers, count: 2}", "remove_layers.count: the model has 2 layers; remove from 1 to 1 of them, got 2"),
    ("{stage: remove_layers}", "give count (layers removed) or fraction"),
    ("{stage: remove_heads, fraction: 1.0}", "fraction"),
])
def test_bad_settings_stop_a_run_with_one_line_naming_the_field(stage, message, tiny_llama_dir, tmp_path, capsys):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"model: {tiny_llama_dir}\ntask: language-model\nstages:\n  - {stage}\n")
    assert main(["run", str(recipe), "--out", str(tmp_path / "out")]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], errors
    assert not (tmp_path / "out").exists()  # refused before any work


@pytest.mark.parametrize("config, message", [
    (RemoveHeads(fraction=0.5, criterion="magnitude"), "remove_heads: structured removal needs a BERT-style encoder"),
    (RemoveLayers(count=1, criterion="last"), "remove_layers: needs a Llama/Qwen2-style decoder"),
])
def test_a_gpt2_decoder_is_refused_in_one_line_naming_the_stage(config, message, tiny_gpt2_dir):
    with pytest.raises(UserError, match=message) as error:
        ec.apply(load_decoder(tiny_gpt2_dir).model, config)
    assert "GPT2LMHeadModel has neither" in str(error.value) and "\n" not in str(error.value)
