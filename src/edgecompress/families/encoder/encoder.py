"""A Hugging Face encoder as a sentence-embedding `nn.Module`: mean pooling + L2 normalisation.

This is what sentence-transformers' all-MiniLM-L6-v2 computes (Transformer -> Pooling(mean) -> Normalize),
written as one module so that it can be pruned, fine-tuned and exported as a whole.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SentenceEncoder(nn.Module):
    """`(input_ids, attention_mask) -> unit-length embeddings`, one row per sentence.

    >>> encoder = SentenceEncoder(backbone)  # doctest: +SKIP
    >>> encoder(ids, mask).norm(dim=1)  # all ones  # doctest: +SKIP
    """

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone

    def after_resize(self) -> None:
        """After a checkpoint with layers removed was loaded into the original architecture (`resize_to_saved`):
        the config's layer count follows the layers left."""
        from edgecompress.techniques.transformer.depth import sync_layers

        sync_layers(self)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.backbone(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=torch.zeros_like(input_ids),
        ).last_hidden_state
        return mean_pool_normalize(hidden, attention_mask)


def mean_pool_normalize(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average the hidden states of real (unpadded) tokens, then scale each row to length 1."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    summed = (hidden * mask).sum(dim=1)
    count = mask.sum(dim=1).clamp(min=1e-9)
    return F.normalize(summed / count, p=2, dim=1)
