"""Sentences -> fixed token batches, so every model sees exactly the same inputs.

Dynamic int8 picks its activation range per call, so an embedding depends on what else is in the batch
(FINDINGS sec. 6). Comparing models fairly therefore needs the same batches for all: fixed size, corpus
order, each padded to its longest sentence.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

INPUT_NAMES = ("input_ids", "attention_mask")


def token_batches(tokenizer, sentences: list[str], batch_size: int = 32, max_length: int = 256) -> list[dict[str, np.ndarray]]:
    """Tokenized feeds `{"input_ids", "attention_mask"}` (int64), `batch_size` sentences each.

    >>> feeds = token_batches(tokenizer, ["A sentence.", "Another one."])  # doctest: +SKIP
    """
    return list(_batches(tokenizer, sentences, batch_size, max_length))


def _batches(tokenizer, sentences, batch_size, max_length) -> Iterator[dict[str, np.ndarray]]:
    for start in range(0, len(sentences), batch_size):
        encoded = tokenizer(
            sentences[start : start + batch_size],
            padding=True,
            truncation=True,
            max_length=max_length,
            return_tensors="np",
        )
        yield {name: encoded[name].astype(np.int64) for name in INPUT_NAMES}
