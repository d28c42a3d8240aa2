"""The built-in decoder: a MobileLLM-style deep-thin Llama, trained here on the standard library's source.

No pretrained decoder ships offline on our machines, so edgecompress trains one, once per machine, and keeps
it as an ordinary Hugging Face directory (config.json, model.safetensors, tokenizer.json) in the cache:
everything downstream loads it exactly as it loads a user's `--model-dir`.

The shape follows MobileLLM (Liu et al., 2024) for sub-billion models: deep and thin (12 layers of width
192), SwiGLU feed-forward, grouped-query attention (3 query heads share 1 key/value head) and input and output
embeddings tied; about 5.5M parameters with a 4,096-token byte-level BPE vocabulary trained on the same
files. Training is a fixed number of steps over random windows of the training files, seeded, so the same
seed gives the same weights on the same machine class (about 8 minutes on 2 cores); it is a small
code-completion model, not a chat model.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from edgecompress.core.progress import console, progress_bar
from edgecompress.families.lm.corpus import SourceCorpus, stdlib_corpus

BUILTIN_LM = "stdlib-coder"  # the recipe's `model:` for the built-in decoder
CACHE_ENV = "EDGECOMPRESS_CACHE_DIR"
END_OF_TEXT = "<|endoftext|>"
FORMAT = 1  # bump when training changes, so cached models of an earlier recipe are not reused


@dataclass(frozen=True)
class BuiltinSpec:
    """Shape and training budget of the built-in decoder (tests train a much smaller one)."""

    vocab_size: int = 4096
    hidden_size: int = 192
    layers: int = 12
    heads: int = 3
    kv_heads: int = 1
    intermediate_size: int = 512
    context: int = 512  # positions the model supports
    window: int = 128  # tokens per training sequence
    batch_size: int = 16
    steps: int = 500
    lr: float = 3e-3
    seed: int = 0

    def fingerprint(self) -> str:
        # the corpus is this Python's standard library, so its version is part of what was trained on
        text = json.dumps({**asdict(self), "format": FORMAT, "python": list(sys.version_info[:2])}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def cache_root() -> Path:
    """Where trained built-in models are kept: $EDGECOMPRESS_CACHE_DIR or ~/.cache/edgecompress/models."""
    return Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "edgecompress")) / "models"


def builtin_model_dir(spec: BuiltinSpec = BuiltinSpec()) -> Path:
    """The built-in decoder's directory, trained first if this machine has none for `spec` yet.

    >>> builtin_model_dir()  # doctest: +SKIP
    PosixPath('/root/.cache/edgecompress/models/stdlib-coder-1c9f0e6a8b2d')
    """
    from filelock import FileLock

    target = cache_root() / f"{BUILTIN_LM}-{spec.fingerprint()}"
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):  # two runs at once: one trains, the other waits and reuses it
        if not (target / "config.json").is_file():
            console.log(f"{BUILTIN_LM}: training the built-in decoder once on this machine ({spec.steps} steps); it is kept in {target.parent}")
            for stale in target.parent.glob(f".training-{target.name}-*"):  # a killed earlier training's leftovers
                shutil.rmtree(stale, ignore_errors=True)
            with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".training-{target.name}-") as scratch:
                train_builtin(spec, Path(scratch) / "model")
                os.replace(Path(scratch) / "model", target)  # the whole directory appears at once, or not at all
    return target


def train_tokenizer(texts, vocab_size: int):
    """A byte-level BPE tokenizer (GPT-2's scheme: every byte sequence is encodable) trained on `texts`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[END_OF_TEXT], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token=END_OF_TEXT, bos_token=END_OF_TEXT, unk_token=END_OF_TEXT)


def token_stream(tokenizer, texts) -> torch.Tensor:
    """All `texts` as one token sequence, each file followed by the end-of-text token."""
    ids: list[int] = []
    for encoded in tokenizer(list(texts), add_special_tokens=False)["input_ids"]:
        ids += encoded + [tokenizer.eos_token_id]
    return torch.tensor(ids, dtype=torch.int64)


def train_builtin(spec: BuiltinSpec, out: Path, corpus: SourceCorpus | None = None) -> Path:
    """Train the tokenizer and the model on the corpus's training files; save both to `out`."""
    from transformers import LlamaConfig, LlamaForCausalLM

    corpus = corpus or stdlib_corpus()
    tokenizer = train_tokenizer(corpus.train, spec.vocab_size)
    stream = token_stream(tokenizer, corpus.train)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=spec.hidden_size, intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.layers, num_attention_heads=spec.heads, num_key_value_heads=spec.kv_heads,
        max_position_embeddings=spec.context, tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, rms_norm_eps=1e-5, rope_theta=10000.0,
    )
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        model = LlamaForCausalLM(config)
        losses = _train(model, stream, spec)
    model.eval()
    out.mkdir(parents=True)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # "Writing model shards": our own progress says what runs
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    record = {"trained_by": "edgecompress", "spec": asdict(spec), "format": FORMAT, "train_tokens": len(stream),
              "first_loss": losses[0], "last_loss": losses[-1], "seconds": round(time.perf_counter() - start, 1),
              "torch_threads": torch.get_num_threads()}
    (out / "edgecompress-training.json").write_text(json.dumps(record, indent=2) + "\n")
    return out


def _train(model, stream: torch.Tensor, spec: BuiltinSpec) -> list[float]:
    """AdamW on random windows of the stream, linear warm-up then cosine decay; returns the loss per 10 steps."""
    order = torch.Generator().manual_seed(spec.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=spec.lr, betas=(0.9, 0.95), weight_decay=0.1)
    warmup = max(1, spec.steps // 20)
    losses, recent = [], []
    model.train()
    with progress_bar() as bar:
        job = bar.add_task(f"{BUILTIN_LM}: train", total=spec.steps, status="")
        for step in range(spec.steps):
            scale = (step + 1) / warmup if step < warmup else 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, spec.steps - warmup)))
            for group in optimizer.param_groups:
                group["lr"] = spec.lr * scale
            starts = torch.randint(0, len(stream) - spec.window - 1, (spec.batch_size,), generator=order)
            batch = torch.stack([stream[s : s + spec.window + 1] for s in starts.tolist()])
            loss = _loss(model, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            recent.append(loss.item())
            if len(recent) == 10 or step == spec.steps - 1:
                losses.append(round(sum(recent) / len(recent), 4))
                recent = []
            bar.update(job, advance=1, status=f"loss {loss.item():.3f}")
    return losses


def _loss(model, batch: torch.Tensor) -> torch.Tensor:
    logits = model(input_ids=batch[:, :-1]).logits
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))
