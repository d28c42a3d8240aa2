"""How close a compressed decoder stays to the original: perplexity, top-1 agreement and KL divergence.

Scores are reduced per batch to three numbers per token (`token_statistics`) so that no evaluation set's
logits (tokens x vocabulary) are ever held at once. The original model's log-probabilities ride along as the
targets (`ReferenceWindows`), computed once when first needed and kept while they are small.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from edgecompress.core.progress import console
from edgecompress.core.tasks.inputs import call_model

KEEP_REFERENCE_BYTES = 512 * 2**20  # above this, the original's log-probabilities are recomputed per scoring


class ReferenceWindows:
    """Token windows as (inputs, targets); targets are [batch, sequence, 1 + vocabulary]: the next token's id
    (as a float, exact below 2**24) then the uncompressed model's log-probabilities."""

    def __init__(self, model, batches: list[tuple[dict, torch.Tensor]]):
        self.model, self.batches = model, batches
        self._kept: dict[int, torch.Tensor] = {}

    def __iter__(self):
        for index, (inputs, labels) in enumerate(self.batches):
            yield inputs, self._targets(index, inputs, labels)

    def __len__(self) -> int:
        return len(self.batches)

    def _targets(self, index: int, inputs: dict, labels: torch.Tensor) -> torch.Tensor:
        if index in self._kept:
            return self._kept[index]
        if index == 0:
            console.log(f"language-model: computing the uncompressed model's predictions on {len(self.batches)} batches")
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode():
                reference = F.log_softmax(call_model(self.model, inputs).float(), dim=-1)
        finally:
            self.model.train(was_training)
        targets = torch.cat([labels.unsqueeze(-1).float(), reference], dim=-1)
        if targets.numel() * 4 * len(self.batches) <= KEEP_REFERENCE_BYTES:
            self._kept[index] = targets
        return targets


def token_statistics(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per token: [negative log-likelihood of the next token, 1 if the top-1 equals the original's, KL(original
    || this model)], shape [tokens, 3]."""
    logits = torch.as_tensor(logits).float()
    labels = targets[..., 0].long()
    reference = targets[..., 1:]
    logp = F.log_softmax(logits, dim=-1)
    nll = -logp.gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    agree = (logp.argmax(-1) == reference.argmax(-1)).float()
    kl = (reference.exp() * (reference - logp)).sum(-1)
    return torch.stack([nll, agree, kl], dim=-1).reshape(-1, 3)


def perplexity(statistics: torch.Tensor, _targets: torch.Tensor) -> float:
    """exp(mean negative log-likelihood) over every held-out token."""
    return math.exp(statistics[:, 0].mean().item())


def agreement_details(statistics: torch.Tensor, _targets: torch.Tensor) -> dict:
    """Next-token agreement with the uncompressed model, for metrics.json."""
    return {"agreement": {"top1": round(statistics[:, 1].mean().item(), 5), "kl_mean": round(statistics[:, 2].mean().item(), 6),
                          "nll_mean": round(statistics[:, 0].mean().item(), 5), "tokens": len(statistics)}}
