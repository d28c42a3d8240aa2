"""The handlers of the quantization configs: one per mode, plus QAT (which stays in torch)."""

from __future__ import annotations

import copy
from itertools import islice
from pathlib import Path
from typing import Callable

import onnx

from edgecompress.core.errors import UserError
from edgecompress.core.progress import console
from edgecompress.core.tasks.checks import FiniteBatches
from edgecompress.core.train import train_epochs
from edgecompress.onnx.graph_passes import fold_weight_transposes
from edgecompress.runtime.feeds import input_feeds
from edgecompress.storage.files import atomic_path
from edgecompress.storage.rundir import scratch_dir
from edgecompress.techniques.prune.selection import select_layers
from edgecompress.techniques.quantize.block_qat import prepare_block_qat
from edgecompress.techniques.quantize.channel_ranges import channel_absmax
from edgecompress.techniques.quantize.config import BlockQat, CastFp16, Qat, QuantizeDynamic, QuantizeInt4, QuantizeStatic
from edgecompress.techniques.quantize.embedding_tables import quantize_embedding_tables
from edgecompress.techniques.quantize.exact_int8 import ensure_exact_int8
from edgecompress.techniques.quantize.float_layers import float_layer_details
from edgecompress.techniques.quantize.matmul_error import matmul_quantization_error
from edgecompress.techniques.quantize.mixed_precision import explicit_float_layers, quantize_within_tolerance
from edgecompress.techniques.quantize.onnx_dynamic import quantize_dynamic_int8
from edgecompress.techniques.quantize.onnx_lowbit import cast_fp16, quantize_int4_weights
from edgecompress.techniques.quantize.onnx_static import nodes_using, quantize_static_int8
from edgecompress.techniques.quantize.outlier_smoothing import smooth_outlier_channels, weight_matmul_inputs
from edgecompress.techniques.quantize.qat import prepare_qat
from edgecompress.techniques.stage import DecisionData, ModelState, StageContext

# write(keep_float_weights, weight_bits) -> the int8 artifact
Int8Writer = Callable[[tuple[str, ...], int], Path]


def quantize_static_stage(config: QuantizeStatic, state: ModelState, ctx: StageContext) -> ModelState:
    task = ctx.require_task("quantize")

    def write(keep_float_weights: tuple[str, ...], weight_bits: int) -> Path:
        return quantize_static_int8(
            state.onnx_path,
            ctx.artifact_path,
            FiniteBatches(task.train_loader, "quantize.calibration_batches"),
            max_batches=config.calibration_batches,
            per_channel=config.per_channel,
            method=config.calibration,
            graph_format=config.format,
            keep_float=keep_float_weights,
            weight_bits=weight_bits,
        )

    return _int8(config, state, ctx, write)


def quantize_dynamic_stage(config: QuantizeDynamic, state: ModelState, ctx: StageContext) -> ModelState:
    details: dict = {"rounding": config.rounding}
    with scratch_dir() as work:
        (source, model), calibration = _untied(state.onnx_path, work, details), _dynamic_calibration(config, state, ctx)
        if config.smooth_outliers:
            smoothed = smooth_outlier_channels(model, channel_absmax(model, weight_matmul_inputs(model), calibration), config.smooth_outliers)
            model, source = smoothed.model, work / "smoothed.onnx"
            onnx.save_model(model, str(source))
            details["smoothed_tensors"] = len(smoothed.outlier_channels)
        worst: tuple[str, ...] = ()
        if config.keep_worst:
            errors = matmul_quantization_error(model, calibration, max_batches=len(calibration))
            if config.keep_worst >= len(errors):
                raise UserError(f"quantize.keep_worst: {config.keep_worst} would keep all {len(errors)} weight MatMuls in float; give fewer")
            worst = tuple(e.node for e in errors[: config.keep_worst])
            details["kept_worst"] = [e.to_json() for e in errors[: config.keep_worst]]
            details["kept_worst_why"] = f"lowest SQNR of the MatMul output under simulated int8, on {len(calibration)} calibration batches"
            details["matmul_sqnr_db"] = {e.node: round(e.sqnr_db, 2) for e in errors}
        source_graph = model.graph

        def write(keep_float_weights: tuple[str, ...], weight_bits: int) -> Path:
            excluded = (*nodes_using(source_graph, keep_float_weights), *worst)
            quantized = ctx.artifact_path if config.embedding_bits is None else work / "int8.onnx"
            quantize_dynamic_int8(
                source, quantized, per_channel=config.per_channel, exclude_nodes=excluded, weight_bits=weight_bits,
                gptq_calibration=calibration if config.rounding == "gptq" else None,
            )
            if config.embedding_bits is not None:
                details["embedding_tables"] = _embedding_tables(quantized, ctx.artifact_path, config.embedding_bits, config.embedding_block_size)
            return ctx.artifact_path

        result = _int8(config, state, ctx, write)
    result.details["quantization"] = {**details, **result.details.get("quantization", {})}
    return result


def _dynamic_calibration(config: QuantizeDynamic, state: ModelState, ctx: StageContext) -> list | None:
    """The first `calibration_batches` training inputs as feeds, when an option of the stage reads them."""
    if not (config.smooth_outliers or config.keep_worst or config.rounding == "gptq"):
        return None
    return _calibration_feeds(state, ctx, config.calibration_batches)


def _calibration_feeds(state: ModelState, ctx: StageContext, limit: int) -> list:
    """The first `limit` training inputs as the ONNX file's feeds."""
    batches = FiniteBatches(ctx.require_task("quantize").train_loader, "quantize.calibration_batches")
    return list(islice(input_feeds(batches, state.onnx_path), limit))


def cast_fp16_stage(config: CastFp16, state: ModelState, ctx: StageContext) -> ModelState:
    cast_fp16(state.onnx_path, ctx.artifact_path)
    return ModelState(None, ctx.artifact_path, state.params, state.nonzero_params, state.macs)


def quantize_int4_stage(config: QuantizeInt4, state: ModelState, ctx: StageContext) -> ModelState:
    details: dict = {"block_size": config.block_size, "rounding": config.rounding, "accuracy_level": config.accuracy_level}
    calibration = _calibration_feeds(state, ctx, config.calibration_batches) if config.rounding == "gptq" else None
    with scratch_dir() as work:
        _, graph = _untied(state.onnx_path, work, details)  # the graph as loaded: not read from disk again
        settings = {"block_size": config.block_size, "accuracy_level": config.accuracy_level, "gptq_calibration": calibration}
        if config.embedding_bits is None:
            quantize_int4_weights(graph, ctx.artifact_path, **settings)
        else:
            quantize_int4_weights(graph, work / "int4.onnx", **settings)
            details["embedding_tables"] = _embedding_tables(work / "int4.onnx", ctx.artifact_path, config.embedding_bits, config.embedding_block_size)
            details["embedding_bits"] = config.embedding_bits
    return ModelState(None, ctx.artifact_path, state.params, state.nonzero_params, state.macs, {"quantization": details})


def _untied(source: Path, work: Path, details: dict) -> tuple[Path, onnx.ModelProto]:
    """`source` and its graph, or a copy in `work` whose transposed weights (a tied output layer's) are stored
    transposed, so the quantizers see them (`onnx/graph_passes.fold_weight_transposes`), and that graph."""
    model, folded = fold_weight_transposes(onnx.load(str(source)))
    if not folded:
        return source, model
    details["untied_weights"] = folded
    untied = work / "untied.onnx"
    onnx.save_model(model, str(untied))
    return untied, model


def _embedding_tables(source: Path, target: Path, bits: int, block_size: int) -> list[str]:
    """Store `source`'s large embedding tables in `bits` (blocks of a row); write the result to `target`."""
    quantized, tables = quantize_embedding_tables(onnx.load(str(source)), bits=bits, block_size=block_size)
    with atomic_path(target) as tmp:
        onnx.save_model(quantized, str(tmp))
    return tables


def block_qat_stage(config: BlockQat, state: ModelState, ctx: StageContext) -> ModelState:
    model = copy.deepcopy(state.torch_model)
    grids = prepare_block_qat(model, config.block_size, config.embedding_bits, config.embedding_block_size)
    return ModelState(model, details={"block_qat": grids})


def qat_stage(config: Qat, state: ModelState, ctx: StageContext) -> ModelState:
    task = ctx.require_task("qat")
    model = copy.deepcopy(state.torch_model)
    layers = select_layers(model, config.layers, keep=config.keep, keep_classifier=False, stage="qat")
    prepare_qat(layers, config.bits, config.ternary_rule)
    train_epochs(
        model, task, config.epochs, lr=config.lr, description=ctx.label,
        teacher=ctx.teacher if config.distill > 0 else None, distill_weight=config.distill,
    )
    return ModelState(model)


def _int8(config: QuantizeStatic | QuantizeDynamic, state: ModelState, ctx: StageContext, write: Int8Writer) -> ModelState:
    """Either int8 mode: layers kept in float by name or by tolerance, and the artifact exact on the target CPU."""
    task = ctx.require_task("quantize")
    exactness: dict = {}

    def quantize(keep_float_weights: tuple[str, ...]) -> Path:
        def write_bits(weight_bits: int) -> Path:
            return write(keep_float_weights, weight_bits)

        exactness.update(ensure_exact_int8(write_bits, input_feeds(task.train_loader, state.onnx_path), ctx.target, ctx.label))
        return ctx.artifact_path

    keep = explicit_float_layers(state.torch_model, config.keep_float) if state.torch_model is not None else []
    details = {}
    if config.tolerance is None or state.torch_model is None:
        quantize(tuple(f"{name}.weight" for name in keep))
        if keep:
            details["quantization"] = {"kept_float": keep}
    else:
        decision = DecisionData(task)
        report = quantize_within_tolerance(
            state.torch_model,
            quantize,
            decision.score,
            decision.score(state.onnx_path),
            task.metric.higher_is_better,
            task.train_loader,
            config.tolerance,
            keep,
        )
        details["quantization"] = report.to_json()
        details["quantization"]["decided_on"] = decision.name
        if not report.within_tolerance:
            console.log(f"{ctx.label}: even with every layer in float the drop exceeds {config.tolerance}")
    details["int8"] = exactness
    details.update(float_layer_details(ctx.artifact_path, details))  # layers left computing in float, and why
    # Quantization changes how weights are stored, not how many there are or the work done per input.
    return ModelState(None, ctx.artifact_path, state.params, state.nonzero_params, state.macs, details)
