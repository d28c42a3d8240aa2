"""Structured removal in transformer layers: FFN neurons and attention heads, physically sliced out."""

from edgecompress.techniques.transformer.stage import RemoveFfn, RemoveHeads, remove_ffn_stage, remove_heads_stage
from edgecompress.techniques.transformer.structured import remove_attention_heads, remove_ffn_neurons

__all__ = ["RemoveFfn", "RemoveHeads", "remove_attention_heads", "remove_ffn_neurons", "remove_ffn_stage", "remove_heads_stage"]
