"""`compress_encoder`: prune, distill and quantize a sentence encoder; measure every artifact it ships.

Every number comes from the ONNX files in the output folder, run by ONNX Runtime with one thread:
fidelity of the compressed artifact against the uncompressed one on the same 2,000 held-out sentences
(never used for training, calibration or choices), size on disk, and latency at batch 1 and 32 (interleaved
medians, same batches for both).
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from edgecompress.core.measure.artifact import artifact_bytes
from edgecompress.core.measure.params import count_params
from edgecompress.core.progress import console
from edgecompress.core.seeding import check_seed, seed_everything
from edgecompress.families.encoder.artifact import MODEL_FILE, embed_feeds, save_artifact
from edgecompress.families.encoder.batches import token_batches
from edgecompress.families.encoder.corpus import docstring_corpus
from edgecompress.families.encoder.export import export_encoder
from edgecompress.families.encoder.fidelity import fidelity
from edgecompress.families.encoder.model_dir import LoadedEncoder, load_encoder
from edgecompress.families.encoder.quantize import quantize_encoder_int4, quantize_encoder_int8
from edgecompress.families.encoder.recipe import EncoderRecipe
from edgecompress.runtime.environment import environment
from edgecompress.runtime.latency import measure_feed_latencies
from edgecompress.runtime.targets import DEFAULT_TARGET, check_target
from edgecompress.storage.files import atomic_write_text
from edgecompress.storage.rundir import owned_run_dir, scratch_dir
from edgecompress.techniques.quantize.exact_int8 import ensure_exact_int8

EVAL_SENTENCES = 2000
LATENCY_BATCHES = (1, 32)


@dataclass
class EncoderResult:
    out_dir: Path
    recipe: EncoderRecipe
    baseline: dict
    final: dict
    steps: dict = field(default_factory=dict)
    target: str = DEFAULT_TARGET

    def to_json(self) -> dict:
        return {
            "task": "sentence-encoder fidelity",
            "recipe": self.recipe.model_dump(),
            "target": self.target,
            "baseline": self.baseline,
            "final": self.final,
            "steps": self.steps,
            "summary": {
                "size_ratio": self.baseline["artifact_bytes"] / self.final["artifact_bytes"],
                "latency_ratio": {k: self.final["latency_ms"][k] / self.baseline["latency_ms"][k] for k in self.baseline["latency_ms"]},
            },
            "measurement": {
                "fidelity": f"cosine and overlap@10 of nearest neighbours against the uncompressed ONNX model, {EVAL_SENTENCES} held-out sentences",
                "artifact_bytes": "size on disk of model.onnx (the tokenizer files ship beside it)",
                "latency": "ONNX Runtime CPU, 1 thread, median of interleaved repeats on the same token batch",
            },
            "environment": environment(),
        }


def compress_encoder(
    recipe: EncoderRecipe,
    out_dir: str | Path,
    model_dir: str | Path | None = None,
    seed: int = 0,
    encoder: LoadedEncoder | None = None,
    target: str = DEFAULT_TARGET,
    force: bool = False,
) -> EncoderResult:
    """Compress the encoder in `model_dir` (default: the bundled all-MiniLM-L6-v2) as `recipe` says.

    Writes `baseline/` and `artifact/` (each: model.onnx + tokenizer) and metrics.json to `out_dir`; an
    earlier finished encoder run there is replaced only with `force`. An int8 artifact is made exact on the
    CPU class `target` names and checked for it (`runtime/targets.py`).

    >>> result = compress_encoder(ROUTES["int8"], "runs/minilm-int8")  # doctest: +SKIP
    >>> result.final["fidelity"]["cosine_mean"]  # doctest: +SKIP
    """
    check_seed(seed)
    target = check_target(target)
    loaded = encoder or load_encoder(model_dir)
    with owned_run_dir(out_dir, "encoder", force=force) as out:
        return _compress(recipe, loaded, out, seed, target)


def _compress(recipe: EncoderRecipe, loaded: LoadedEncoder, out: Path, seed: int, target: str) -> EncoderResult:
    seed_everything(seed)
    corpus = docstring_corpus(n_eval=EVAL_SENTENCES, n_train=recipe.train_sentences, seed=seed)
    tokens = lambda sentences: token_batches(loaded.tokenizer, sentences, 32, loaded.max_length)  # noqa: E731
    eval_feeds, calibration = tokens(corpus.eval), tokens(corpus.train[: recipe.calibration_sentences])
    steps: dict = {}

    console.log("exporting the uncompressed encoder")
    baseline_path = export_encoder(loaded.model, out / "baseline" / MODEL_FILE)
    save_artifact(baseline_path, loaded.tokenizer, loaded.max_length, out / "baseline")
    reference = torch.from_numpy(embed_feeds(baseline_path, eval_feeds))

    student = copy.deepcopy(loaded.model)
    if recipe.ffn_fraction or recipe.head_fraction:
        from edgecompress.families.encoder.structured import remove_attention_heads, remove_ffn_neurons

        if recipe.ffn_fraction:
            steps["ffn"] = remove_ffn_neurons(student, recipe.ffn_fraction, calibration)
        if recipe.head_fraction:
            steps["heads"] = remove_attention_heads(student, recipe.head_fraction, calibration)
    if recipe.quantize == "int4":
        from edgecompress.techniques.quantize.block_qat import prepare_block_qat

        steps["qat"] = prepare_block_qat(student)
    if recipe.distill_seconds:
        from edgecompress.families.encoder.distill import distill

        # Word embeddings (half of MiniLM's weights) stay as they are: updating the whole table every step
        # doubles the step time, and only the rows of a batch's tokens would learn anything.
        student.backbone.get_input_embeddings().weight.requires_grad_(False)
        report = distill(student, loaded.model, tokens(corpus.train), seconds=recipe.distill_seconds, epochs=recipe.distill_epochs, seed=seed)
        steps["distill"] = report.to_json() if hasattr(report, "to_json") else vars(report)
    if recipe.quantize == "int4":
        from edgecompress.techniques.quantize.block_qat import bake_block_qat

        bake_block_qat(student)
    params = count_params(student)

    final_path = out / "artifact" / MODEL_FILE
    with scratch_dir() as work:
        with_float = export_encoder(student, final_path if recipe.quantize == "none" else work / "float.onnx")
        start = time.perf_counter()
        if recipe.quantize == "int8":
            details: dict = {}

            def write(weight_bits: int) -> Path:
                details.update(quantize_encoder_int8(
                    with_float, final_path, calibration, recipe.outlier_channels, keep_float=recipe.keep_float, weight_bits=weight_bits
                ).details)
                return final_path

            # the check runs a few sentences: every integer node's inputs and outputs are kept for it
            details["int8"] = ensure_exact_int8(write, (_first(feed, 8) for feed in calibration), target, "quantize")
            steps["quantize"] = details
        elif recipe.quantize == "int4":
            steps["quantize"] = quantize_encoder_int4(with_float, final_path).details
        steps.setdefault("quantize", {})["seconds"] = round(time.perf_counter() - start, 2)
    save_artifact(final_path, loaded.tokenizer, loaded.max_length, out / "artifact")

    console.log("scoring and timing both artifacts in ONNX Runtime")
    compressed = torch.from_numpy(embed_feeds(final_path, eval_feeds))
    latency_feeds = {1: _first(eval_feeds[0], 1), 32: eval_feeds[0]}
    base_lat, final_lat = measure_feed_latencies([baseline_path, final_path], latency_feeds, rounds=15)
    baseline = _measurement("baseline/model.onnx", baseline_path, count_params(loaded.model), fidelity(reference, reference), base_lat)
    final = _measurement("artifact/model.onnx", final_path, params, fidelity(reference, compressed), final_lat)
    result = EncoderResult(out, recipe, baseline, final, steps, target)
    atomic_write_text(out / "metrics.json", json.dumps(result.to_json(), indent=2) + "\n")
    return result


def _measurement(name, path, params, fid, latency) -> dict:
    return {
        "artifact": name,
        "artifact_bytes": artifact_bytes(path),
        "params": params,
        "fidelity": fid.to_json(),
        "latency_ms": {f"batch_{b}": lat.median_ms for b, lat in latency.items()},
        "latency_iqr_ms": {f"batch_{b}": [lat.p25_ms, lat.p75_ms] for b, lat in latency.items()},
    }


def _first(feed: dict, n: int) -> dict:
    """The first `n` sentences of a batch, trimmed to their own length (no padding beyond it)."""
    mask = feed["attention_mask"][:n]
    length = int(mask.sum(axis=1).max())
    return {name: value[:n, :length] for name, value in feed.items()}
