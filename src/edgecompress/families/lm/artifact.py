"""The deliverable: a folder with the ONNX decoder and its tokenizer, and `generate` that runs it in ONNX Runtime.

`model.onnx` takes and returns its key/value cache (`export.py`); `lm.json` says how to feed it (cache shape,
context length, end-of-text token). Generation is the loop every runtime runs: the prompt once with an empty
cache, then one token per step with the cache the step before returned.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgecompress.core.errors import UserError, first_line
from edgecompress.families.lm.decoder import LOGITS, CacheShape
from edgecompress.families.lm.export import ATTENTION_MASK, INPUT_IDS
from edgecompress.families.shipping import read_artifact_settings, write_artifact_folder
from edgecompress.untrusted.folders import check_folder
from edgecompress.untrusted.onnx_files import check_onnx_file

MODEL_FILE = "model.onnx"
SETTINGS_FILE = "lm.json"


def save_artifact(onnx_path: str | Path, tokenizer, cache: CacheShape, context: int, out_dir: str | Path) -> Path:
    """Copy `onnx_path` and the tokenizer into `out_dir` (each file atomically); returns `out_dir`."""
    settings = {"model": MODEL_FILE, "layers": cache.layers, "kv_heads": cache.kv_heads, "head_dim": cache.head_dim,
                "context": context, "eos_token_id": tokenizer.eos_token_id}
    return write_artifact_folder(onnx_path, tokenizer, settings, SETTINGS_FILE, out_dir)


@dataclass(frozen=True)
class Generation:
    prompt_tokens: list[int]
    tokens: list[int]  # the generated tokens, after the prompt
    text: str  # the generated text only
    first_token_ms: float  # the prompt's step: time to first token
    decode_tokens_per_s: float  # the steps after it (0 if only one token was generated)


@dataclass(frozen=True)
class OpenArtifact:
    session: object
    tokenizer: object
    cache: CacheShape
    context: int
    eos_token_id: int


def open_artifact(artifact_dir: str | Path) -> OpenArtifact:
    """A shipped decoder folder, each file checked before it is read; one ONNX Runtime thread, as timed."""
    from transformers import AutoTokenizer

    from edgecompress.runtime.sessions import make_session

    folder = Path(artifact_dir)
    settings_file = folder / SETTINGS_FILE
    if not folder.is_dir() or not settings_file.is_file():
        raise UserError(f"artifact: {folder} has no {SETTINGS_FILE}; pass the artifact/ folder of an `edgecompress llm` or `run` of a language model")
    settings = _read_settings(settings_file)
    check_folder(folder, "artifact")
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True, trust_remote_code=False)
    except Exception as exc:
        raise UserError(f"artifact: cannot load the tokenizer in {folder}: {first_line(exc)}; pass a folder written by edgecompress") from None
    check_onnx_file(folder / settings["model"], "artifact: ONNX file")
    cache = CacheShape(settings["layers"], settings["kv_heads"], settings["head_dim"])
    return OpenArtifact(make_session(folder / settings["model"]), tokenizer, cache, settings["context"], settings["eos_token_id"])


def generate(artifact: OpenArtifact, prompt: str, max_new_tokens: int = 64, top_k: int = 1, seed: int = 0, stop_at_eos: bool = True) -> Generation:
    """Continue `prompt`: greedy (`top_k=1`) or sampled from the `top_k` most likely tokens with `seed`.

    >>> generate(open_artifact("runs/lm/artifact"), "def fibonacci(n):", max_new_tokens=32).text  # doctest: +SKIP
    """
    prompt_ids = artifact.tokenizer(prompt, add_special_tokens=False)["input_ids"]
    if not prompt_ids:
        raise UserError("prompt: the prompt is empty; give some text to continue")
    if max_new_tokens < 1:
        raise UserError(f"--max-new-tokens: must be at least 1, got {max_new_tokens}")
    if top_k < 1:
        raise UserError(f"--top-k: must be at least 1 (1 is greedy), got {top_k}")
    if len(prompt_ids) + max_new_tokens > artifact.context:
        raise UserError(f"prompt: {len(prompt_ids)} prompt tokens + {max_new_tokens} new tokens exceed the model's context of "
                        f"{artifact.context}; shorten the prompt or lower --max-new-tokens")
    rng = np.random.default_rng(seed)
    ids, first_ms, decode_s = generate_ids(artifact, prompt_ids, max_new_tokens, lambda logits: _choose(logits, top_k, rng),
                                           artifact.eos_token_id if stop_at_eos else None)
    decode_rate = (len(ids) - 1) / decode_s if len(ids) > 1 and decode_s > 0 else 0.0
    return Generation(prompt_ids, ids, artifact.tokenizer.decode(ids), first_ms, decode_rate)


def generate_ids(artifact: OpenArtifact, prompt_ids: list[int], max_new_tokens: int, choose, eos: int | None):
    """(new token ids, prompt step in ms, seconds of the decoding steps): the KV-cache loop on the ONNX file."""
    feeds = {INPUT_IDS: np.asarray([prompt_ids], dtype=np.int64)}
    past = {name: value.numpy() for name, value in artifact.cache.empty(1, 0).items()}
    names = [LOGITS, *artifact.cache.present_names()]
    out: list[int] = []
    first_ms, decode_start = 0.0, 0.0
    length = 0
    for step in range(max_new_tokens):
        start = time.perf_counter()
        length += feeds[INPUT_IDS].shape[1]
        results = artifact.session.run(names, {**feeds, ATTENTION_MASK: np.ones((1, length), dtype=np.int64), **past})
        token = int(choose(results[0][0, -1]))
        if step == 0:
            first_ms = (time.perf_counter() - start) * 1000
            decode_start = time.perf_counter()
        out.append(token)
        if eos is not None and token == eos:
            break
        past = dict(zip(artifact.cache.past_names(), results[1:]))
        feeds = {INPUT_IDS: np.asarray([[token]], dtype=np.int64)}
    return out, first_ms, time.perf_counter() - decode_start


def _choose(logits: np.ndarray, top_k: int, rng: np.random.Generator) -> int:
    if top_k == 1:
        return int(np.argmax(logits))
    top = np.argpartition(logits, -top_k)[-top_k:]
    weights = np.exp(logits[top] - logits[top].max())
    return int(rng.choice(top, p=weights / weights.sum()))


def _read_settings(path: Path) -> dict:
    """lm.json, checked: a hand-edited or truncated file is one line, and its model file must lie inside."""
    return read_artifact_settings(path, ("layers", "kv_heads", "head_dim", "context"), ("eos_token_id",))

# Fixed prompts, continued greedily by the original and the compressed file side by side (generations.json):
# what a user reads first to see whether compression changed what the model writes.
SIDE_BY_SIDE_PROMPTS = ("import os\nimport sys\n\n\ndef main(", "class Stack:\n    def __init__(self):\n        ", "for key, value in ")
SIDE_BY_SIDE_TOKENS = 32


def side_by_side(models: dict[str, Path], like: OpenArtifact, prompts=SIDE_BY_SIDE_PROMPTS, max_new_tokens: int = SIDE_BY_SIDE_TOKENS) -> list[dict]:
    """Each prompt's greedy continuation by each ONNX file in `models` (name -> path), fed as `like` is, with the
    cache each file takes (heads or layers removed change it)."""
    from edgecompress.families.lm.export import graph_cache_shape
    from edgecompress.runtime.sessions import make_session

    sessions = {name: OpenArtifact(make_session(path), like.tokenizer, graph_cache_shape(path), like.context, like.eos_token_id)
                for name, path in models.items()}
    rows = []
    for prompt in prompts:
        ids = like.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        row = {"prompt": prompt}
        for name, artifact in sessions.items():
            tokens, _, _ = generate_ids(artifact, ids, max_new_tokens, lambda logits: int(np.argmax(logits)), like.eos_token_id)
            row[name] = like.tokenizer.decode(tokens)
        rows.append(row)
    return rows
