"""A Hugging Face decoder (Llama, Qwen2, GPT-2, ...) as the one module the pipeline compresses.

The pipeline calls models with named inputs; a decoder also carries its key/value cache. `CausalLM` takes
the cache as flat named tensors, `past_key_values.{layer}.key|value` of shape [batch, kv_heads, past,
head_dim], the names the exported ONNX file uses, and returns the logits only; `KvCacheStep` (export) also
returns the updated cache as `present.{layer}.key|value`. A past of length 0 is a prompt without a cache,
which is how scoring runs the exported file: one graph serves the prompt and every decoding step.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch
from torch import nn

LOGITS = "logits"


@dataclass(frozen=True)
class CacheShape:
    """What a decoder's key/value cache looks like: one key and one value tensor per layer."""

    layers: int
    kv_heads: int
    head_dim: int

    def past_names(self) -> list[str]:
        return [f"past_key_values.{layer}.{kind}" for layer in range(self.layers) for kind in ("key", "value")]

    def present_names(self) -> list[str]:
        return [name.replace("past_key_values", "present") for name in self.past_names()]

    def empty(self, batch: int = 1, length: int = 0, dtype=torch.float32) -> dict[str, torch.Tensor]:
        """A cache of `length` positions (zeros): length 0 is a prompt's first step."""
        return {name: torch.zeros(batch, self.kv_heads, length, self.head_dim, dtype=dtype) for name in self.past_names()}


def cache_shape(config) -> CacheShape:
    """The cache shape of a transformers config (GPT-2 spells its fields n_layer/n_head; the attribute map
    of transformers' configs reads them under the common names)."""
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    return CacheShape(config.num_hidden_layers, getattr(config, "num_key_value_heads", None) or heads, head_dim)


class CausalLM(nn.Module):
    """`lm(input_ids, attention_mask, **past) -> logits` [batch, sequence, vocab] for a transformers decoder."""

    def __init__(self, lm: nn.Module):
        super().__init__()
        self.lm = lm
        # transformers 5 names the cache argument `cache`; earlier releases `past_key_values`
        parameters = inspect.signature(lm.forward).parameters
        self._cache_argument = "cache" if "cache" in parameters else "past_key_values"

    @property
    def config(self):
        return self.lm.config

    @property
    def cache(self) -> CacheShape:
        """Read from the config each time: removing heads or layers changes it (`techniques/transformer`)."""
        return cache_shape(self.lm.config)

    def after_resize(self) -> None:
        """After a pruned checkpoint was loaded into the original architecture (`resize_to_saved`): the attention
        head counts follow the loaded projections, as remove_heads left them, and the layer count and cache
        indices the layers left, as remove_layers left them."""
        from edgecompress.techniques.transformer.decoder_heads import sync_attention
        from edgecompress.techniques.transformer.depth import sync_layers

        sync_layers(self)
        sync_attention(self)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **past: torch.Tensor) -> torch.Tensor:
        return self.step(input_ids, attention_mask, past)[0]

    def step(self, input_ids, attention_mask, past: dict[str, torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits and the updated cache (keys and values, layer by layer) after `input_ids`."""
        from transformers import DynamicCache

        cache = DynamicCache()
        cached = 0
        if past:
            names = self.cache.past_names()
            cached = past[names[0]].shape[2]
            for layer in range(self.cache.layers):
                cache.update(past[names[2 * layer]], past[names[2 * layer + 1]], layer)
        # the positions transformers would take, one row per sequence: with a single shared row the exported
        # RotaryEmbedding gets a cos/sin table of batch 1, which ONNX Runtime's kernel refuses for batch > 1
        batch, length = input_ids.shape
        positions = torch.arange(cached, cached + length, device=input_ids.device).unsqueeze(0).expand(batch, length)
        out = self.lm(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions, use_cache=True, **{self._cache_argument: cache})
        updated = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
        presents = []
        if past:
            for layer in updated.layers:
                presents += [layer.keys, layer.values]
        return out.logits, presents


class KvCacheStep(nn.Module):
    """What the ONNX file computes: (input_ids, attention_mask, *past) -> (logits, *present)."""

    def __init__(self, decoder: CausalLM):
        super().__init__()
        self.decoder = decoder

    def forward(self, input_ids, attention_mask, *past):
        names = self.decoder.cache.past_names()
        logits, presents = self.decoder.step(input_ids, attention_mask, dict(zip(names, past)))
        return (logits, *presents)
