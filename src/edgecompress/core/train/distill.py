"""Knowledge distillation (Hinton et al. 2015): the uncompressed model teaches the compressed one."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(teacher || student) on temperature-softened outputs, scaled by T^2 so gradients keep their size."""
    t = temperature
    return (t * t) * F.kl_div(
        F.log_softmax(student_logits / t, dim=1),
        F.log_softmax(teacher_logits / t, dim=1),
        log_target=True,
        reduction="batchmean",
    )
