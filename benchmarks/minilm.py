"""all-MiniLM-L6-v2: edgecompress's three routes against ONNX Runtime's own quantizer, in one run.

Every artifact is an ONNX file run by ONNX Runtime (one thread). Fidelity is measured against the
uncompressed model's embeddings on 2,000 held-out docstring sentences; latency is timed in one interleaved
call for all files on the same token batch, as a ratio to the plain torch.onnx export of the fp32 model.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import multiprocessing
import resource
import shutil
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import onnx
import torch
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_dynamic, quantize_static

from benchmarks.pareto import pareto_chart
from edgecompress.core.measure.params import count_nonzero_params, count_params
from edgecompress.delivery import pack
from edgecompress.families.encoder import load_encoder, route_stages, sentence_encoder_task
from edgecompress.families.encoder.artifact import embed_feeds
from edgecompress.families.encoder.batches import token_batches
from edgecompress.families.encoder.corpus import docstring_corpus
from edgecompress.families.encoder.export import export_encoder
from edgecompress.families.encoder.fidelity import fidelity
from edgecompress.orchestration.pipeline.run import compress
from edgecompress.runtime.latency import measure_feed_latencies
from edgecompress.techniques.distill import Distill
from edgecompress.techniques.distill.loop import distill

OUT = Path("runs/bench-minilm")
# Distillation runs a fixed 4 epochs over 6,000 sentences (752 steps, ~3.5 minutes on an idle 2-core box)
# instead of the routes' 240 s budget: the fidelity numbers then do not depend on how busy the machine is.
DISTILL_EPOCHS = 4
DISTILL = {"distill_epochs": DISTILL_EPOCHS}
TRAIN_SENTENCES = 6000  # the sentence-encoder task's training sentences (families/encoder/task.py), also for PyTorch prune + distillation
CALIBRATION_SENTENCES = 256
ROUTES = [  # label, route, settings, target (docs/targets.md)
    ("edgecompress int8 (outlier smoothing, GPTQ, int8 embeddings; portable: weights +-64, exact on every CPU)", "int8", {}, "portable"),
    ("edgecompress int8, --target x86-vnni (weights +-127: not exact on AVX2)", "int8", {}, "x86-vnni"),
    ("edgecompress int4 + int4 embeddings, no distillation", "int4", {"distill_seconds": 0}, "portable"),
    (f"edgecompress int4 + int4 embeddings, QAT distilled {DISTILL_EPOCHS} epochs", "int4", DISTILL, "portable"),
    ("edgecompress FFN neurons -50%, no distillation", "structured", {"distill_seconds": 0}, "portable"),
    (f"edgecompress FFN neurons -50%, distilled {DISTILL_EPOCHS} epochs", "structured", DISTILL, "portable"),
]


def run() -> dict:
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    loaded = load_encoder()
    corpus = docstring_corpus(n_train=TRAIN_SENTENCES)
    tokens = lambda sentences: token_batches(loaded.tokenizer, sentences, 32, loaded.max_length)  # noqa: E731
    eval_feeds = tokens(corpus.eval)
    files: list[tuple[str, Path, float]] = []
    dense = (count_params(loaded.model), count_nonzero_params(loaded.model))
    counts: dict[str, tuple[int, int]] = {}  # label -> (params, non-zero params) of the model the file holds

    start = time.perf_counter()
    plain = plain_export(loaded.model, OUT / "fp32-plain.onnx")
    files.append(("fp32, plain torch.onnx export (reference)", plain, time.perf_counter() - start))
    start = time.perf_counter()
    ours_fp32 = export_encoder(loaded.model, OUT / "fp32-edgecompress.onnx")
    files.append(("fp32, edgecompress export (residual sums as Sum)", ours_fp32, time.perf_counter() - start))
    for label, source, per_channel in (
        ("ORT quantize_dynamic, per-channel, on the plain export", plain, True),
        ("ORT quantize_dynamic, per-tensor (default), on the plain export", plain, False),
        ("ORT quantize_dynamic, per-channel, on edgecompress's export", ours_fp32, True),
    ):
        start = time.perf_counter()
        target = OUT / f"ort-{'pc' if per_channel else 'pt'}-{source.stem}.onnx"
        with contextlib.redirect_stdout(io.StringIO()):
            quantize_dynamic(str(source), str(target), per_channel=per_channel, weight_type=QuantType.QInt8,
                             extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
        files.append((label, target, time.perf_counter() - start))
    start = time.perf_counter()
    target = _ort_static(plain, OUT / "ort-static-qdq-pc.onnx", tokens(corpus.train[:CALIBRATION_SENTENCES]))
    files.append((f"ORT quantize_static, QDQ, per-channel, minmax, {CALIBRATION_SENTENCES} calibration sentences, on the plain export",
                  target, time.perf_counter() - start))
    baseline_labels = [label for label, _, _ in files]
    counts.update({label: dense for label in baseline_labels})
    built = _pytorch_and_torch_pruning_files(loaded.model, tokens(corpus.train))
    files += [(label, path, seconds) for label, path, seconds, _ in built]
    counts.update({label: count for label, _, _, count in built})
    task = sentence_encoder_task(loaded)
    for label, route, overrides, target in ROUTES:
        start = time.perf_counter()
        folder = OUT / f"{route}-{overrides.get('distill_epochs', overrides.get('distill_seconds', 'default'))}-{target}"
        with contextlib.redirect_stderr(io.StringIO()):
            result = compress(loaded.model, task, route_bench_stages(route, **overrides), folder, target=target, force=True)  # the last bench run's
        files.append((label, folder / "final.onnx", time.perf_counter() - start))
        counts[label] = (result.final.params, result.final.params)  # the routes remove weights physically or not at all

    reference = torch.from_numpy(embed_feeds(plain, eval_feeds))
    first = eval_feeds[0]
    one = {k: v[:1, : int(first["attention_mask"][0].sum())] for k, v in first.items()}
    latencies = measure_feed_latencies([p for _, p, _ in files], {1: one, 32: first}, rounds=15)
    # packing a 91 MB file takes about a minute of LZMA: two processes, after the timing (which needs the cores)
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        packed_sizes = list(pool.map(_packed_bytes, [p for _, p, _ in files]))
    rows = []
    for (label, path, seconds), latency, packed in zip(files, latencies, packed_sizes):
        fid = fidelity(reference, torch.from_numpy(embed_feeds(path, eval_feeds)))
        rows.append({"label": label, "bytes": path.stat().st_size, "packed_bytes": packed, "seconds": seconds, **fid.to_json(),
                     "params": counts[label][0], "nonzero": counts[label][1], "macs_per_token": linear_macs_per_token(path),
                     "latency": {b: (lat.median_ms, lat.spread) for b, lat in latency.items()}})
    torch_rows = _torchao_rows(loaded.model, eval_feeds, reference, one, first)
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    figure = pareto_chart("minilm", [(r["label"], r["bytes"], r["cosine_mean"]) for r in rows + torch_rows], x_label="ONNX file (bytes, log scale)",
                          y_label="mean cosine to the fp32 model", title="all-MiniLM-L6-v2: size vs fidelity (BENCHMARKS.md)")
    return {"rows": rows, "torch_rows": torch_rows, "peak_rss": peak_rss, "batch_tokens": tuple(first["input_ids"].shape), "figure": figure}


def route_bench_stages(route: str, distill_seconds: float | None = None, distill_epochs: int | None = None) -> list:
    """The route's stages (examples/minilm-ROUTE.yaml), distilled for `distill_epochs` without a time budget."""
    stages = route_stages(route, distill_seconds=distill_seconds)
    if distill_epochs is None:
        return stages
    return [Distill(epochs=distill_epochs, frozen=s.frozen) if isinstance(s, Distill) else s for s in stages]


def _packed_bytes(path: Path) -> int:
    return pack(path, path.with_name(path.stem + ".ecz")).packed_bytes


def _encoder_linears(model) -> list[torch.nn.Linear]:
    return [m for layer in model.backbone.encoder.layer for m in layer.modules() if isinstance(m, torch.nn.Linear)]


def _ort_static(source: Path, target: Path, calibration: list[dict]) -> Path:
    """ONNX Runtime's static int8 as its documentation has a user do it: pre-process, then quantize_static."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(calibration)

        def get_next(self):
            return next(self.batches, None)

    prepared = target.with_name(target.stem + "-preprocessed.onnx")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)  # fails on dynamo exports: "Incomplete symbolic shape inference"
        quantize_static(str(prepared), str(target), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
                        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    prepared.unlink()
    return target


def linear_macs_per_token(path: Path) -> int:
    """Multiply-accumulates per token of the file's weight matrix products (MatMul/Gemm with a constant weight,
    in any of their quantized forms): what the kernels that run really compute. A masked zero still costs its
    MAC (dense kernels); a removed neuron does not. Attention's score and value products (2 x sequence x 384
    per layer and token) come on top and are the same for every row."""
    graph = onnx.load(str(path), load_external_data=False).graph
    shapes = {i.name: list(i.dims) for i in graph.initializer}
    for node in graph.node:  # a QDQ weight reaches its MatMul through DequantizeLinear
        if node.op_type == "DequantizeLinear" and node.input[0] in shapes:
            shapes[node.output[0]] = shapes[node.input[0]]
    weight_input = {"MatMul": 1, "Gemm": 1, "MatMulInteger": 1, "DynamicQuantizeMatMul": 1, "QLinearMatMul": 3}
    total = 0
    for node in graph.node:
        if node.op_type == "MatMulNBits":
            attributes = {a.name: a.i for a in node.attribute}
            total += attributes["K"] * attributes["N"]
        elif node.op_type in weight_input and len(node.input) > weight_input[node.op_type]:
            dims = shapes.get(node.input[weight_input[node.op_type]])
            if dims is not None and len(dims) == 2:
                total += dims[0] * dims[1]
    return total


def _pytorch_and_torch_pruning_files(model, train_feeds) -> list[tuple[str, Path, float, tuple[int, int]]]:
    """What a user gets from the built-ins: PyTorch's global L1 masks (50% of the encoder layers' Linear
    weights), without and with fine-tuning (distillation to the original, masks held by PyTorch's own
    hooks, same settings as edgecompress's routes), and Torch-Pruning's FFN neurons -50% (L2 group
    importance); plain exports."""
    import torch_pruning as tp
    from torch.nn.utils import prune

    files = []
    for epochs in (0, DISTILL_EPOCHS):
        start = time.perf_counter()
        masked = copy.deepcopy(model)
        layers = [(m, "weight") for m in _encoder_linears(masked)]
        prune.global_unstructured(layers, pruning_method=prune.L1Unstructured, amount=0.5)
        if epochs:
            masked.backbone.get_input_embeddings().weight.requires_grad_(False)
            with contextlib.redirect_stderr(io.StringIO()):
                distill(masked, model, train_feeds, epochs=epochs, description="PyTorch prune + distillation")
        for module, name in layers:
            prune.remove(module, name)
        path = plain_export(masked, OUT / f"torch-prune-l1-50-{epochs}.onnx")
        label = f"PyTorch prune: global L1 50% of encoder Linear weights, {f'distilled {epochs} epochs' if epochs else 'no fine-tune'}"
        files.append((label, path, time.perf_counter() - start, (count_params(masked), count_nonzero_params(masked))))

    start = time.perf_counter()
    slim = copy.deepcopy(model)
    ffn_in = [layer.intermediate.dense for layer in slim.backbone.encoder.layer]
    ignored = [m for m in slim.modules() if isinstance(m, torch.nn.Linear) and m not in ffn_in] + [slim.backbone.embeddings]
    ids = torch.tensor([[101, 7592, 2088, 1012, 102]])
    tp.pruner.MetaPruner(slim, (ids, torch.ones_like(ids)), importance=tp.importance.GroupMagnitudeImportance(p=2),
                         pruning_ratio=0.5, ignored_layers=ignored, root_module_types=[torch.nn.Linear]).step()
    path = plain_export(slim, OUT / "torch-pruning-ffn-50.onnx")
    files.append(("Torch-Pruning: FFN neurons -50% (L2), no fine-tune", path, time.perf_counter() - start, (count_params(slim), count_nonzero_params(slim))))
    return files


def _torchao_rows(model, eval_feeds, reference, one: dict, first: dict) -> list[dict]:
    """PyTorch's recommended int8 path (torchao, int8 dynamic activations + int8 weights): it has no ONNX export,
    so it is scored and timed in PyTorch (1 thread), against the fp32 model in PyTorch."""
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

    start = time.perf_counter()
    quantized = copy.deepcopy(model).eval()
    quantize_(quantized, Int8DynamicActivationInt8WeightConfig())
    seconds = time.perf_counter() - start
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            vectors = torch.cat([quantized(torch.from_numpy(f["input_ids"]), torch.from_numpy(f["attention_mask"])) for f in eval_feeds])
            latency = {}
            for batch, feed in ((1, one), (32, first)):
                args = (torch.from_numpy(feed["input_ids"]), torch.from_numpy(feed["attention_mask"]))
                times = {"fp32": [], "int8": []}
                for candidate in (model, quantized):
                    candidate(*args)  # warm-up
                for _ in range(7):
                    for key, candidate in (("fp32", model), ("int8", quantized)):
                        begin = time.perf_counter()
                        candidate(*args)
                        times[key].append((time.perf_counter() - begin) * 1000)
                latency[batch] = (statistics.median(times["int8"]), statistics.median(times["int8"]) / statistics.median(times["fp32"]))
    finally:
        torch.set_num_threads(threads)
    saved = OUT / "torchao-int8.pt"
    torch.save(quantized.state_dict(), saved)
    fid = fidelity(reference, vectors.float())
    return [{"label": "PyTorch-recommended int8: torchao int8 dynamic activations + int8 weights (runs in PyTorch)",
             "bytes": saved.stat().st_size, "seconds": seconds, **fid.to_json(), "latency": latency, "params": count_params(model)}]


def plain_export(model, path: Path) -> Path:
    """The fp32 model exported as a user would, with torch.onnx.export (dynamo) and nothing else."""
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    ids = torch.tensor([[101, 7592, 2088, 1012, 102]])
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with contextlib.redirect_stdout(io.StringIO()):
        program = torch.onnx.export(model, (ids, torch.ones_like(ids)), input_names=["input_ids", "attention_mask"],
                                    output_names=["sentence_embedding"], dynamic_shapes=({0: batch, 1: sequence},) * 2,
                                    dynamo=True, external_data=False)
    program.save(str(path), external_data=False)
    return path


def markdown(result: dict) -> str:
    rows = result["rows"]
    ref = rows[0]["latency"]
    lines = [
        "## all-MiniLM-L6-v2 (sentence encoder, issue #7)",
        "",
        "Fidelity to the fp32 model on 2,000 held-out sentences from the standard library's docstrings",
        "(mean and 5th-percentile cosine, overlap@10 of nearest neighbours, 200 queries); every number is",
        "measured on the ONNX file in ONNX Runtime. Latency: one interleaved timing of all files (1 thread),",
        f"batch 1 and batch 32 (a {result['batch_tokens'][0]}x{result['batch_tokens'][1]}-token batch), as a ratio",
        "to the plain fp32 export, with the absolute median (\"spread > 20%\" when the interquartile range of the",
        "repeats exceeds 20% of it). Packed: the ONNX file as edgecompress's .ecz. MACs/token: the weight matrix",
        "products the file runs per token (attention's own products come on top, the same for every row). Time:",
        "export/quantization/distillation time.",
        "",
        "| method | cos mean | cos p5 | overlap@10 | ONNX file | smaller | packed | params | non-zero | MACs/token | latency b1 | latency b32 | b32 median | time |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lat = r["latency"]
        noisy = " (spread > 20%)" if max(lat[1][1], lat[32][1]) > 0.2 else ""
        lines.append(
            f"| {r['label']} | {r['cosine_mean']:.4f} | {r['cosine_p5']:.4f} | {r['overlap_at_10']:.3f} | "
            f"{r['bytes'] / 1e6:.1f} MB | {rows[0]['bytes'] / r['bytes']:.2f}x | {r['packed_bytes'] / 1e6:.1f} MB | "
            f"{r['params'] / 1e6:.2f}M | {r['nonzero'] / 1e6:.2f}M | {r['macs_per_token'] / 1e6:.2f}M | {lat[1][0] / ref[1][0]:.2f}x | "
            f"{lat[32][0] / ref[32][0]:.2f}x{noisy} | {lat[32][0]:.1f} ms | {r['seconds']:.0f} s |"
        )
    for r in result.get("torch_rows", []):
        lat = r["latency"]
        lines.append(
            f"| {r['label']} | {r['cosine_mean']:.4f} | {r['cosine_p5']:.4f} | {r['overlap_at_10']:.3f} | "
            f"{r['bytes'] / 1e6:.1f} MB (saved state_dict) | {rows[0]['bytes'] / r['bytes']:.2f}x | - | {r['params'] / 1e6:.2f}M | "
            f"{r['params'] / 1e6:.2f}M | - | {lat[1][1]:.2f}x of PyTorch fp32 | "
            f"{lat[32][1]:.2f}x of PyTorch fp32 | {lat[32][0]:.1f} ms | {r['seconds']:.0f} s |"
        )
    if "figure" in result:
        lines += ["", f"![all-MiniLM-L6-v2: size vs fidelity]({result['figure']})"]
    lines += [
        "",
        f"Peak resident memory of the whole benchmark process (every route above, one process): {result['peak_rss'] / 2**30:.2f} GiB.",
        "",
        "Why edgecompress's export is faster: ONNX Runtime 1.32 fuses each residual `Add -> LayerNormalization`",
        "into `SkipLayerNormalization`, which runs ~6x slower than the two ops on this CPU at one thread; the",
        "export writes those sums as `Sum` (`export/ort_fusions.py`). The row 'ORT ... on edgecompress's export'",
        "gives ORT's quantizer the same advantage, so the int8 rows can also be compared on equal footing.",
    ]
    return "\n".join(lines)
