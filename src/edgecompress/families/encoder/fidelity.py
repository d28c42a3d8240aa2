"""How close a compressed encoder's embeddings stay to the original's, on the same sentences.

With no labelled similarity data offline, the honest target is fidelity: a compressed encoder that gives
the same embeddings gives the same search results and the same downstream scores. Mean cosine is lenient;
overlap@10 of nearest neighbours is what a search user sees, and is much harsher.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Fidelity:
    cosine_mean: float
    cosine_p5: float  # 5th percentile: the worst sentences, which a mean hides
    overlap_at_10: float

    def to_json(self) -> dict:
        return {"cosine_mean": self.cosine_mean, "cosine_p5": self.cosine_p5, "overlap_at_10": self.overlap_at_10}


def fidelity(reference: torch.Tensor, compressed: torch.Tensor, queries: int = 200, k: int = 10) -> Fidelity:
    """Compare row-aligned embeddings of the same sentences (both L2-normalised).

    overlap@k: for each of the first `queries` sentences, the share of its `k` nearest neighbours among all
    sentences (itself excluded) that the compressed embeddings find too, averaged.

    >>> e = torch.nn.functional.normalize(torch.randn(50, 8), dim=1)
    >>> fidelity(e, e, queries=10).overlap_at_10
    1.0
    """
    if reference.shape != compressed.shape:
        raise ValueError(f"fidelity: shapes differ, {tuple(reference.shape)} vs {tuple(compressed.shape)}")
    reference, compressed = reference.double(), compressed.double()
    cos = (reference * compressed).sum(dim=1) / (reference.norm(dim=1) * compressed.norm(dim=1)).clamp(min=1e-12)
    queries = min(queries, reference.shape[0])
    k = min(k, reference.shape[0] - 1)
    return Fidelity(
        cosine_mean=float(cos.mean()),
        cosine_p5=float(torch.quantile(cos, 0.05)),
        overlap_at_10=_neighbour_overlap(reference, compressed, queries, k),
    )


def _neighbour_overlap(reference: torch.Tensor, compressed: torch.Tensor, queries: int, k: int) -> float:
    def neighbours(emb: torch.Tensor) -> torch.Tensor:
        sims = emb[:queries] @ emb.T
        sims[torch.arange(queries), torch.arange(queries)] = -float("inf")  # a sentence is not its own neighbour
        return sims.topk(k, dim=1).indices

    ref, comp = neighbours(reference), neighbours(compressed)
    shared = [len(set(a.tolist()) & set(b.tolist())) for a, b in zip(ref, comp)]
    return sum(shared) / (queries * k)
