"""Attention heads of a decoder removed for real (remove_heads): the matrices and
the graph really shrink, the key/value-cache export generates the pruned torch model's greedy tokens, the
activation-aware choice beats weight norms on KL to the original, and bad settings stop with one line."""

import copy
import json

import numpy as np
import pytest
import torch

import edgecompress as ec
from edgecompress.core.errors import UserError
from edgecompress.families.lm.artifact import OpenArtifact, generate_ids, open_artifact
from edgecompress.families.lm.decoder import CausalLM
from edgecompress.families.lm.export import export_decoder
from edgecompress.runtime.sessions import make_session
from edgecompress.techniques.transformer.config import RemoveHeads
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


def test_a_fraction_that_removes_no_head_is_refused_naming_the_field(sharp_llama):
    decoder, task = sharp_llama
    with pytest.raises(UserError, match=r"remove_heads.fraction: 0.2 of 2 query heads per key/value head removes none.*at least 0.25"):
        ec.apply(decoder.model, RemoveHeads(fraction=0.2), task)


def _graph(path):
    import onnx

    return onnx.load(str(path)).graph


def _run_and_generate(model_dir, stages, out):
    """A recipe run; (result, the shipped artifact's greedy tokens, the pruned torch model's) for 16 tokens."""
    from edgecompress.orchestration.recipe import run_recipe
    from edgecompress.orchestration.recipe.schema import Recipe

    result = run_recipe(Recipe(model=str(model_dir), task="language-model", stages=stages), out)
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


def test_a_gpt2_decoder_is_refused_in_one_line_naming_the_stage(tiny_gpt2_dir):
    from edgecompress.families.lm.model_dir import load_decoder

    with pytest.raises(UserError, match="remove_heads: structured removal needs a BERT-style encoder") as error:
        ec.apply(load_decoder(tiny_gpt2_dir).model, RemoveHeads(fraction=0.5, criterion="magnitude"))
    assert "GPT2LMHeadModel has neither" in str(error.value) and "\n" not in str(error.value)
