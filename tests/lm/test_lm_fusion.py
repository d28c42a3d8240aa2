"""A rotary decoder's export carries ONNX Runtime's GroupQueryAttention (families/lm/fusion.py): the same logits
as the unfused graph for prompts and cached steps, the same greedy tokens as torch, and other graphs unchanged."""

import collections

import numpy as np
import onnx
import pytest
import torch

from edgecompress.families.lm.decoder import CausalLM
from edgecompress.families.lm.export import export_decoder
from edgecompress.families.lm.fusion import fuse_group_query_attention
from edgecompress.runtime.sessions import make_session
from tests.lm.test_lm_structured import PROMPT, _exported_greedy, _random_decoder, _torch_greedy


def _op_types(path) -> collections.Counter:
    return collections.Counter(node.op_type for node in onnx.load(str(path)).graph.node)


def _feeds(cache, batch: int, new: int, past: int, rng) -> dict[str, np.ndarray]:
    feed = {"input_ids": rng.integers(1, 300, (batch, new)), "attention_mask": np.ones((batch, past + new), dtype=np.int64)}
    for name in cache.past_names():
        feed[name] = rng.standard_normal((batch, cache.kv_heads, past, cache.head_dim)).astype(np.float32)
    return feed


@pytest.mark.parametrize("kind, heads, kv_heads, packed", [("Llama", 2, 1, True), ("Qwen2", 2, 2, False)])
def test_rotary_attention_is_fused_and_computes_what_the_unfused_graph_computes(tmp_path, kind, heads, kv_heads, packed):
    """Llama with 2 query heads per key/value head (q, k and v packed into one MatMul); Qwen2 with one query
    head per key/value head and biased projections (q, k and v stay separate MatMuls)."""
    model = _random_decoder(kind, num_hidden_layers=2, num_attention_heads=heads, num_key_value_heads=kv_heads)
    fused, plain = export_decoder(model, tmp_path / "fused.onnx"), export_decoder(model, tmp_path / "plain.onnx", fuse=False)
    ops = _op_types(fused)
    assert ops["GroupQueryAttention"] == 2 and not {"Attention", "RotaryEmbedding", "Expand"} & set(ops), ops
    assert ops["MatMul"] == _op_types(plain)["MatMul"] - (4 if packed else 0)  # 3 -> 1 per layer
    sessions = make_session(fused), make_session(plain)
    rng = np.random.default_rng(0)
    for batch, new, past in [(1, 24, 0), (4, 24, 0), (1, 1, 40), (4, 1, 40), (1, 5, 17)]:
        feed = _feeds(model.cache, batch, new, past, rng)
        got, want = (session.run(None, feed) for session in sessions)
        for a, b in zip(got, want):
            assert a.shape == b.shape
            np.testing.assert_allclose(a, b, atol=1e-4, rtol=0)
    assert _exported_greedy(model, tmp_path / "greedy.onnx", PROMPT, 64) == _torch_greedy(model, PROMPT, 64)


def test_graphs_without_the_pattern_are_left_as_exported(tmp_path):
    """GPT-2 has no rotary embedding, and ORT's kernel takes no head of 8 values: the files are the plain exports."""
    import transformers

    torch.manual_seed(0)
    gpt2 = CausalLM(transformers.GPT2LMHeadModel(transformers.GPT2Config(vocab_size=300, n_embd=32, n_layer=1, n_head=2, n_positions=256)))
    narrow_heads = _random_decoder("Llama", num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=2)
    for name, model in (("gpt2", gpt2.eval()), ("llama", narrow_heads)):
        path = export_decoder(model, tmp_path / f"{name}.onnx")
        assert "GroupQueryAttention" not in _op_types(path)
        assert fuse_group_query_attention(onnx.load(str(path)), 256) is None
