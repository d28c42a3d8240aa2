"""Knowledge distillation (Hinton et al. 2015): the uncompressed model teaches the compressed one."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float, class_dim: int = 1) -> torch.Tensor:
    """KL(teacher || student) on temperature-softened outputs, scaled by T^2 so gradients keep their size;
    the mean over every prediction (a row of a classifier's [batch, classes], a token of a language model's
    [batch, tokens, vocabulary] with `class_dim` -1).

    >>> float(distillation_loss(torch.zeros(2, 5, 7), torch.zeros(2, 5, 7), 1.0, class_dim=-1))
    0.0
    """
    t = temperature
    return (t * t) * F.kl_div(
        _rows(F.log_softmax(student_logits / t, dim=class_dim), class_dim),
        _rows(F.log_softmax(teacher_logits / t, dim=class_dim), class_dim),
        log_target=True,
        reduction="batchmean",
    )


def _rows(scores: torch.Tensor, class_dim: int) -> torch.Tensor:
    """[..., classes, ...] -> [predictions, classes], so "batchmean" is the mean per prediction."""
    return scores.movedim(class_dim, -1).reshape(-1, scores.shape[class_dim])
