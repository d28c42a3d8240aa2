"""Determinism: one call seeds every random source a run touches."""

from __future__ import annotations

import random

from edgecompress.core.errors import UserError

MAX_SEED = 2**32 - 1  # NumPy's generators take 32-bit seeds; a run adds small offsets that torch's 64 bits absorb


def check_seed(seed) -> int:
    """Refuse a seed the random generators cannot take, before any work (not at `seed + 1`, minutes later)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        huge = isinstance(seed, int) and not isinstance(seed, bool) and abs(seed).bit_length() > 80
        shown = f"a number of {abs(seed).bit_length()} bits" if huge else repr(seed)[:40]
        raise UserError(f"seed: must be an integer from 0 to {MAX_SEED}, got {shown}")
    return seed


def seed_everything(seed: int):
    """Seed Python, NumPy and torch; return a torch Generator for data shuffling."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator
