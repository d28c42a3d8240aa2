"""Pruning on the digits CNN: each pattern with its fine-tuning, measured on the exported ONNX file."""

from __future__ import annotations

import copy
import statistics
import tempfile
from pathlib import Path

import torch
from torch import nn

from benchmarks.block_sparse import _calls_per_round, _max_rel_error, _round_median_ms
from benchmarks.common import result_row, run_stages, table
from edgecompress.orchestration.pipeline.stages import NM, Finetune, Prune, SparseGPT, Unstructured

RECIPES = [
    ("one-shot global magnitude 90%, no fine-tune", [Prune(pattern="unstructured", criterion="l1", scope="global", amount=0.9)]),
    (
        "gradual (cubic) global magnitude 90% + distillation, 40 epochs",
        [Prune(pattern="unstructured", criterion="l1", scope="global", amount=0.9, schedule="gradual", steps=10, epochs=40, lr=2e-3, distill=0.5)],
    ),
    (
        "channels -50% (Torch-Pruning, L2) + 24 epochs fine-tune with distillation",
        [Prune(pattern="channel", amount=0.5), Finetune(epochs=24, lr=2e-3, distill=0.5)],
    ),
    (
        "channels -50%, Taylor, 2 iterative rounds of 8 epochs",
        [Prune(pattern="channel", criterion="taylor", amount=0.5, schedule="iterative", steps=2, epochs=8, lr=2e-3)],
    ),
    (
        "8x8 blocks -75% (conv2, fc1), 3 iterative rounds of 6 epochs",
        [Prune(pattern="block", block=(8, 8), layers=("conv2", "fc1"), amount=0.75, schedule="iterative", steps=3, epochs=6, lr=1e-3)],
    ),
    ("2:4 Wanda (conv2, fc1) + 16 epochs fine-tune", [Prune(pattern="nm", criterion="wanda", layers=("conv2", "fc1")), Finetune(epochs=16, lr=1e-3)]),
    ("unstructured 80% movement, gradual 12 epochs", [Prune(pattern="unstructured", criterion="movement", amount=0.8, schedule="gradual", epochs=12, lr=2e-3)]),
]


# MiniLM: the engine's masks on the Linear layers inside the 6 encoder layers (embeddings and pooler kept).
ENCODER_LINEARS = dict(layers=("backbone.encoder.layer.*",), types=("Linear",), keep_classifier=False)
MINILM_METHODS = [
    ("magnitude (L1) 50%, per layer", Prune(pattern="unstructured", criterion="l1", amount=0.5, **ENCODER_LINEARS)),
    ("magnitude (L1) 50%, global", Prune(pattern="unstructured", criterion="l1", amount=0.5, scope="global", **ENCODER_LINEARS)),
    ("Wanda 50%, per layer", Prune(pattern="unstructured", criterion="wanda", amount=0.5, **ENCODER_LINEARS)),
    ("SparseGPT 50%", SparseGPT(pattern=Unstructured(), amount=0.5, layers=ENCODER_LINEARS["layers"], keep_classifier=False)),
    ("magnitude (L1) 2:4", Prune(pattern="nm", criterion="l1", **ENCODER_LINEARS)),
    ("Wanda 2:4", Prune(pattern="nm", criterion="wanda", **ENCODER_LINEARS)),
    ("SparseGPT 2:4", SparseGPT(pattern=NM(n=2, m=4), layers=ENCODER_LINEARS["layers"], keep_classifier=False)),
]
MINILM_EVAL, MINILM_CALIBRATION = 2000, 256


# The unstructured sparse-kernel path (prune/csr_sparse.py): a 1024x1024 Linear with its smallest weights zero.
CSR_FEATURES, CSR_SPARSITIES, CSR_BATCHES, CSR_ROUNDS = 1024, (0.7, 0.9, 0.95), (1, 16, 256), 7


def run() -> dict:
    return {
        "rows": [result_row(label, run_stages("digits-cnn", stages)) for label, stages in RECIPES],
        "minilm": minilm_rows(),
        "csr": csr_timings(),
    }


def csr_timings() -> dict:
    """Median ms per batch of torch dense, ORT dense and `CsrLinear` at each sparsity; one thread, interleaved rounds."""
    from edgecompress.onnx import export_onnx
    from edgecompress.runtime.latency import measure_latencies
    from edgecompress.techniques.prune.csr_sparse import CsrLinear

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        denses = {s: _smallest_zeroed(s) for s in CSR_SPARSITIES}
        timed = {"torch": denses[CSR_SPARSITIES[0]], **{s: CsrLinear.from_linear(d) for s, d in denses.items()}}
        inputs = {b: torch.randn(b, CSR_FEATURES, generator=torch.Generator().manual_seed(b)) for b in CSR_BATCHES}
        with torch.inference_mode():
            errors = {s: max(_max_rel_error(timed[s](x), denses[s](x)) for x in inputs.values()) for s in CSR_SPARSITIES}
        rounds = {k: {b: [] for b in CSR_BATCHES} for k in (*timed, "ort")}
        with tempfile.TemporaryDirectory() as tmp:
            path = export_onnx(timed["torch"], inputs[1], Path(tmp) / "dense.onnx")
            calls = {k: {b: _calls_per_round(m, inputs[b]) for b in CSR_BATCHES} for k, m in timed.items()}
            for _ in range(CSR_ROUNDS):
                ort = measure_latencies([path], (CSR_FEATURES,), batch_sizes=CSR_BATCHES, rounds=1, min_round_seconds=0.02)[0]
                for b in CSR_BATCHES:
                    rounds["ort"][b].append(ort[b].median_ms)
                    for key, module in timed.items():
                        rounds[key][b].append(_round_median_ms(module, inputs[b], calls[key][b]))
    finally:
        torch.set_num_threads(threads)
    ms = {k: {b: statistics.median(v) for b, v in per_batch.items()} for k, per_batch in rounds.items()}
    return {"ms": ms, "errors": errors}


def _smallest_zeroed(sparsity: float) -> nn.Linear:
    torch.manual_seed(0)
    layer = nn.Linear(CSR_FEATURES, CSR_FEATURES)
    with torch.no_grad():
        flat = layer.weight.view(-1)
        flat[flat.abs().argsort()[: round(sparsity * flat.numel())]] = 0
    return layer.eval()


def minilm_rows() -> list[dict]:
    """Fidelity of all-MiniLM-L6-v2 pruned without fine-tuning, on held-out docstring sentences."""
    from edgecompress.families.encoder.batches import token_batches
    from edgecompress.families.encoder.corpus import docstring_corpus
    from edgecompress.families.encoder.fidelity import fidelity
    from edgecompress.families.encoder.model_dir import load_encoder
    from edgecompress.techniques.prune.engine import prune_model

    loaded = load_encoder()
    corpus = docstring_corpus(n_eval=MINILM_EVAL, n_train=MINILM_CALIBRATION)
    calibration = token_batches(loaded.tokenizer, corpus.train, 32, loaded.max_length)
    evaluation = token_batches(loaded.tokenizer, corpus.eval, 32, loaded.max_length)
    reference = _embed(loaded.model, evaluation)
    rows = []
    for label, config in MINILM_METHODS:
        model = copy.deepcopy(loaded.model)
        if isinstance(config, SparseGPT):
            _sparsegpt(model, config, calibration)
        else:
            prune_model(model, config, None, train=lambda *a, **k: None, batches=calibration)
        rows.append({"label": label, **fidelity(reference, _embed(model, evaluation)).to_json()})
    return rows


def _sparsegpt(model: nn.Module, config: SparseGPT, calibration: list) -> None:
    """The SparseGPT stage's own steps, on the same calibration batches as Wanda (no task object needed)."""
    from edgecompress.core.masks import set_mask
    from edgecompress.techniques.prune.selection import select_layers
    from edgecompress.techniques.prune.sparsegpt import layer_hessians, sparsegpt_prune

    layers = select_layers(model, config.layers, ("Linear",), config.keep, config.keep_classifier)
    hessians = layer_hessians(model, layers, calibration, len(calibration))
    for name, layer in layers.items():
        pruned, keep = sparsegpt_prune(layer.weight, hessians[name], config.pattern, config.amount, config.block_size, config.damp)
        with torch.no_grad():
            layer.weight.copy_(pruned)
        set_mask(layer, keep)


def _embed(model, feeds) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([model(torch.from_numpy(f["input_ids"]), torch.from_numpy(f["attention_mask"])) for f in feeds])


def markdown(result: dict) -> str:
    rows = result["rows"]
    base = rows[0]["baseline_score"]
    return "\n".join(
        [
            "## Pruning (digits CNN, fp32 ONNX; seed 0)",
            "",
            f"Dense baseline: {base:.2f}% test accuracy, 53,002 parameters, 339,328 MACs. Every row is one `compress` run:",
            "accuracy by ONNX Runtime on the exported file, size on disk, latency ratios against the dense baseline",
            "timed in the same run (1 thread). Masked (unstructured, block, N:M) models are stored densely in ONNX, so",
            "their files are not smaller and they are not faster there; only removed channels shrink the file and the",
            "latency. Non-zero counts show what a sparse format or kernel could exploit.",
            "",
            *table(rows),
            *_minilm_table(result.get("minilm", [])),
            *_csr_table(result.get("csr")),
        ]
    )


def _csr_table(csr: dict | None) -> list[str]:
    if not csr:
        return []
    ms = csr["ms"]
    lines = [
        "",
        f"### Unstructured sparse kernel: torch CSR (`CsrLinear`) on a {CSR_FEATURES}x{CSR_FEATURES} Linear",
        "",
        "Smallest weights set to zero; speedup of `CsrLinear` against the same layer dense in torch eager and in ONNX "
        f"Runtime. One thread, median of per-round medians over {CSR_ROUNDS} interleaved rounds. `choose_csr_path` "
        "takes this path from 90% at batch >= 16 (95% below), against torch dense; ONNX Runtime has no sparse kernel.",
        "",
        "| sparsity | max rel. error | " + " | ".join(f"batch {b}: vs torch / vs ORT" for b in CSR_BATCHES) + " |",
        "|---|---|" + "---|" * len(CSR_BATCHES),
    ]
    for s, error in csr["errors"].items():
        cells = [f"{ms['torch'][b] / ms[s][b]:.2f}x / {ms['ort'][b] / ms[s][b]:.2f}x" for b in CSR_BATCHES]
        lines.append(f"| {float(s):.0%} | {error:.1e} | " + " | ".join(cells) + " |")
    return lines


def _minilm_table(rows: list[dict]) -> list[str]:
    if not rows:
        return []
    return [
        "",
        "### Unstructured and 2:4 masks on all-MiniLM-L6-v2, no fine-tuning",
        "",
        f"The engine's masks on the 36 Linear layers of the 6 encoder layers (embeddings kept); Wanda and SparseGPT "
        f"calibrated on the same {MINILM_CALIBRATION} docstring sentences, fidelity to the unpruned model on {MINILM_EVAL:,} held-out ones "
        "(torch, fp32). Masks keep the model dense: no size or speed change in ONNX.",
        "",
        "| method | cos mean | cos p5 | overlap@10 |",
        "|---|---|---|---|",
        *[f"| {r['label']} | {r['cosine_mean']:.3f} | {r['cosine_p5']:.3f} | {r['overlap_at_10']:.3f} |" for r in rows],
    ]
