"""An export of an architecture traced before reuses its graph, refills the weights, and gives the very bytes a
fresh export gives; anything else about the architecture that differs makes a fresh trace."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from edgecompress.core.models import DigitsCNN, DigitsMLP
from edgecompress.onnx import export_onnx
from edgecompress.onnx.export_cache import cache_info, clear_cache
from edgecompress.runtime.sessions import make_session

X = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(1))


class Scaled(nn.Module):
    """A plain Python attribute that forward reads: part of the architecture, not a weight."""

    def __init__(self, factor: float):
        super().__init__()
        self.linear = nn.Linear(64, 10)
        self.factor = factor

    def forward(self, x):
        return self.linear(x.flatten(1)) * self.factor


class WithConstant(nn.Module):
    """A tensor attribute that is neither parameter nor buffer: traced as a constant."""

    def __init__(self, offset: torch.Tensor):
        super().__init__()
        self.linear = nn.Linear(64, 10)
        self.offset = offset

    def forward(self, x):
        return self.linear(x.flatten(1)) + self.offset


def _export(model, path):
    export_onnx(model, X[:1], path)
    return path.read_bytes()


def _ort(path):
    return make_session(path).run(None, {"input": X.numpy()})[0]


def _seeded(factory, seed):
    torch.manual_seed(seed)
    return factory().eval()


def test_same_architecture_new_weights_reuses_the_trace_and_gives_a_fresh_exports_bytes(tmp_path):
    clear_cache()
    first, second = _seeded(DigitsCNN, 0), _seeded(DigitsCNN, 1)
    _export(first, tmp_path / "first.onnx")
    before = cache_info()
    reused = _export(second, tmp_path / "reused.onnx")
    assert cache_info().hits == before.hits + 1
    clear_cache()
    fresh = _export(second, tmp_path / "fresh.onnx")
    assert reused == fresh
    np.testing.assert_allclose(_ort(tmp_path / "reused.onnx"), second(X).detach().numpy(), rtol=1e-4, atol=1e-5)


def test_pruned_weights_export_as_pruned(tmp_path):
    """The case every run meets: masks baked into the same architecture after the baseline was exported."""
    from torch.nn.utils import prune

    clear_cache()
    model = _seeded(DigitsMLP, 0)
    _export(model, tmp_path / "dense.onnx")
    for module in model.modules():
        if isinstance(module, nn.Linear):
            prune.l1_unstructured(module, "weight", amount=0.5)
    _export(model, tmp_path / "pruned.onnx")
    assert cache_info().hits >= 1
    np.testing.assert_allclose(_ort(tmp_path / "pruned.onnx"), model(X).detach().numpy(), rtol=1e-4, atol=1e-5)
    assert not np.allclose(_ort(tmp_path / "pruned.onnx"), _ort(tmp_path / "dense.onnx"), atol=1e-3)


@pytest.mark.parametrize("make", [lambda k: Scaled(float(k)), lambda k: WithConstant(torch.full((10,), float(k)))], ids=["python-attribute", "tensor-attribute"])
def test_a_change_outside_the_weights_is_traced_again(make, tmp_path):
    clear_cache()
    one, three = make(1), make(3)
    three.load_state_dict(one.state_dict())  # same weights: only the attribute differs
    _export(one, tmp_path / "one.onnx")
    _export(three, tmp_path / "three.onnx")
    for model, name in ((one, "one"), (three, "three")):
        np.testing.assert_allclose(_ort(tmp_path / f"{name}.onnx"), model(X).detach().numpy(), rtol=1e-4, atol=1e-5)
    assert not np.allclose(_ort(tmp_path / "one.onnx"), _ort(tmp_path / "three.onnx"))


def test_new_shapes_are_traced_again(tmp_path):
    clear_cache()
    _export(nn.Sequential(nn.Flatten(), nn.Linear(64, 10)), tmp_path / "wide.onnx")
    hits = cache_info().hits
    narrow = nn.Sequential(nn.Flatten(), nn.Linear(64, 4))
    _export(narrow, tmp_path / "narrow.onnx")
    assert cache_info().hits == hits
    assert _ort(tmp_path / "narrow.onnx").shape == (3, 4)


def test_a_decoder_with_its_cache_exports_from_the_reused_trace_to_a_fresh_exports_bytes(tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    from edgecompress.families.lm.decoder import CausalLM
    from edgecompress.families.lm.export import export_decoder

    config = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                         num_key_value_heads=1, max_position_embeddings=32, tie_word_embeddings=True)
    torch.manual_seed(0)
    model = CausalLM(LlamaForCausalLM(config))
    clear_cache()
    export_decoder(model, tmp_path / "a.onnx")
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(0.5)
    hits = cache_info().hits
    export_decoder(model, tmp_path / "b.onnx")
    assert cache_info().hits == hits + 1
    clear_cache()
    export_decoder(model, tmp_path / "c.onnx")
    assert (tmp_path / "b.onnx").read_bytes() == (tmp_path / "c.onnx").read_bytes()
    assert (tmp_path / "a.onnx").read_bytes() != (tmp_path / "b.onnx").read_bytes()


def test_a_decoders_attention_kernel_is_part_of_its_architecture():
    """transformers keeps the attention implementation outside the config's dict; it changes the traced graph."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from edgecompress.families.lm.decoder import CausalLM
    from edgecompress.onnx.export_cache import architecture_key

    config = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                         num_key_value_heads=1, max_position_embeddings=32)
    model = CausalLM(LlamaForCausalLM(config))
    sdpa = architecture_key(model, (torch.zeros(1),))
    model.config._attn_implementation = "eager"
    assert sdpa is not None and architecture_key(model, (torch.zeros(1),)) not in (None, sdpa)
