"""The decoder family as a `Task`: its data, metric, export and input signature. Nothing else.

- data: the standard library's source files (`corpus.py`), tokenized by the model's own tokenizer and cut
  into windows of `window` tokens; held-out files for scoring only, training files for fine-tuning,
  distillation and calibration, validation files for choices;
- metric: perplexity of the next token on the held-out windows (lower is better), with the next-token
  agreement with the uncompressed model beside it (top-1 match rate and mean KL divergence, `agreement.py`);
- inputs: `input_ids`, `attention_mask` and an empty key/value cache, the signature of the exported file
  (`export.py`), so the artifact that ships is the one scored;
- latency: one decoding step at batch 1 with `LATENCY_PAST` cached tokens (its inverse is decode tokens/s),
  and the time to first token: the step over a held-out prompt of `window` tokens with an empty cache;
- shipping: the tokenizer and `lm.json` beside the final model in `artifact/`, so `edgecompress generate` runs it,
  and `generations.json`: fixed prompts continued greedily by the original and the compressed file, side by side.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from edgecompress.core.tasks.task import GENERATIONS_FILE, Metric, Task
from edgecompress.families.lm.agreement import ReferenceWindows, agreement_details, perplexity, token_statistics
from edgecompress.families.lm.artifact import open_artifact, save_artifact, side_by_side
from edgecompress.families.lm.builtin import token_stream
from edgecompress.families.lm.corpus import stdlib_corpus
from edgecompress.families.lm.export import ATTENTION_MASK, INPUT_IDS, export_decoder, graph_cache_shape
from edgecompress.families.lm.model_dir import LoadedDecoder
from edgecompress.storage.files import atomic_write_text

TASK_NAME = "language-model"
WINDOW = 128
EVAL_WINDOWS = 64
TRAIN_WINDOWS = 512
VALIDATION_WINDOWS = 32
BATCH_SIZE = 8
LATENCY_PAST = 127  # a 128-token context after this step
ARTIFACT_DIR = "artifact"
BASELINE_FILE = "baseline.onnx"  # the pipeline's name for the uncompressed model's file
SPREAD = 4  # windows are drawn from this many times the tokens they hold, so they come from many files
FILES_PER_CHUNK = 16

__all__ = ["TASK_NAME", "language_model_task"]


def language_model_task(decoder: LoadedDecoder, seed: int = 0, window: int = WINDOW, n_eval: int = EVAL_WINDOWS,
                        n_train: int = TRAIN_WINDOWS, n_validation: int = VALIDATION_WINDOWS) -> Task:
    """The task of keeping `decoder`'s next-token predictions on Python source.

    Held-out and validation windows are evenly spaced over their files (the same windows for every seed);
    training windows are drawn with `seed`.

    >>> task = language_model_task(load_decoder(), seed=0)  # doctest: +SKIP
    >>> task.metric.name  # doctest: +SKIP
    'perplexity'
    """
    corpus = stdlib_corpus()
    tokenizer, cache = decoder.tokenizer, decoder.model.cache
    window = min(window, decoder.context)
    held_out = _spaced_windows(_enough_tokens(tokenizer, corpus.held_out, n_eval * (window + 1) * SPREAD), window, n_eval)
    validation = _spaced_windows(_enough_tokens(tokenizer, corpus.validation, n_validation * (window + 1) * SPREAD), window, n_validation)
    shuffled = list(corpus.train)
    random.Random(seed).shuffle(shuffled)
    stream = _enough_tokens(tokenizer, shuffled, n_train * (window + 1) * SPREAD)
    starts = torch.randint(0, len(stream) - window - 1, (n_train,), generator=torch.Generator().manual_seed(seed))
    train = torch.stack([stream[s : s + window + 1] for s in starts.tolist()])

    def batches(windows: torch.Tensor) -> list[tuple[dict, torch.Tensor]]:
        return [(_inputs(chunk[:, :-1], cache), chunk[:, 1:].clone()) for chunk in windows.split(BATCH_SIZE)]

    def latency_inputs(batch: int) -> dict[str, torch.Tensor]:
        generator = torch.Generator().manual_seed(seed)
        past = {name: torch.randn(value.shape, generator=generator) for name, value in cache.empty(batch, LATENCY_PAST).items()}
        return {INPUT_IDS: torch.full((batch, 1), tokenizer.eos_token_id, dtype=torch.int64),
                ATTENTION_MASK: torch.ones(batch, LATENCY_PAST + 1, dtype=torch.int64), **past}

    def ship(final_onnx: Path, run_dir: Path) -> dict[str, dict]:
        folder = save_artifact(final_onnx, tokenizer, graph_cache_shape(final_onnx), decoder.context, run_dir / ARTIFACT_DIR)
        models = {"original": run_dir / BASELINE_FILE, "compressed": final_onnx}
        rows = side_by_side({name: path for name, path in models.items() if path.is_file()}, open_artifact(folder))
        atomic_write_text(run_dir / GENERATIONS_FILE, json.dumps(rows, indent=2) + "\n")
        return time_to_first_token({"baseline": run_dir / BASELINE_FILE, "final": final_onnx}, held_out[0, :window], cache)

    return Task(
        name=TASK_NAME,
        train_loader=batches(train),
        eval_loader=ReferenceWindows(decoder.model, batches(held_out)),
        val_loader=ReferenceWindows(decoder.model, batches(validation)),
        metric=Metric("perplexity", perplexity, higher_is_better=False, details=agreement_details, per_batch=token_statistics),
        loss_fn=_next_token_loss,
        export=export_decoder,
        latency_inputs=latency_inputs,
        latency_batches=(1,),
        ship=ship,
        class_dim=-1,  # logits are [batch, tokens, vocabulary]
    )


def time_to_first_token(files: dict[str, Path], prompt: torch.Tensor, cache) -> dict[str, dict]:
    """The prompt step at batch 1 with an empty cache (what a user waits for before the first new token), for
    each file, timed interleaved in ONNX Runtime on one thread as every latency is: {name: {"time_to_first_token": ...}}."""
    from edgecompress.runtime.latency import measure_feed_latencies

    feed = {INPUT_IDS: prompt[None].numpy(), ATTENTION_MASK: np.ones((1, len(prompt)), dtype=np.int64),
            **{name: value.numpy() for name, value in cache.empty(1, 0).items()}}
    names = [name for name, path in files.items() if path.is_file()]
    timed = measure_feed_latencies([files[name] for name in names], {1: feed})
    return {name: {"time_to_first_token": {"prompt_tokens": len(prompt), "median_ms": round(t[1].median_ms, 4),
                                           "p25_ms": round(t[1].p25_ms, 4), "p75_ms": round(t[1].p75_ms, 4)}}
            for name, t in zip(names, timed)}


def _inputs(ids: torch.Tensor, cache) -> dict[str, torch.Tensor]:
    """A batch as the exported file takes it: token ids, a full mask, and a cache of length 0."""
    return {INPUT_IDS: ids, ATTENTION_MASK: torch.ones_like(ids), **cache.empty(len(ids), 0)}


def _enough_tokens(tokenizer, texts, needed: int) -> torch.Tensor:
    """The token stream of the first files of `texts` that give `needed` tokens (all of them if they give
    fewer): tokenizing the whole corpus would cost more than the scoring it feeds."""
    taken, parts, count = 0, [], 0
    while taken < len(texts) and count < needed:
        chunk = texts[taken : taken + FILES_PER_CHUNK]
        parts.append(token_stream(tokenizer, chunk))
        count += len(parts[-1])
        taken += len(chunk)
    return torch.cat(parts)


def _spaced_windows(stream: torch.Tensor, window: int, count: int) -> torch.Tensor:
    """`count` windows of `window` + 1 tokens spread evenly over the stream (fewer if it is short)."""
    last = len(stream) - window - 1
    if last < 0:
        raise ValueError(f"corpus: {len(stream)} tokens are fewer than one window of {window + 1}")
    count = min(count, last // window + 1)
    starts = torch.linspace(0, last, count).round().long()
    return torch.stack([stream[s : s + window + 1] for s in starts.tolist()])


def _next_token_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))
