"""The handlers of the quantization configs: one per mode, plus QAT (which stays in torch)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Callable

import onnx

from edgecompress.core.progress import console
from edgecompress.core.tasks.checks import FiniteBatches
from edgecompress.core.train import train_epochs
from edgecompress.runtime.feeds import input_feeds
from edgecompress.techniques.prune.selection import select_layers
from edgecompress.techniques.quantize.config import CastFp16, Qat, QuantizeDynamic, QuantizeInt4, QuantizeStatic
from edgecompress.techniques.quantize.exact_int8 import ensure_exact_int8
from edgecompress.techniques.quantize.float_layers import float_layer_details
from edgecompress.techniques.quantize.mixed_precision import explicit_float_layers, quantize_within_tolerance
from edgecompress.techniques.quantize.onnx_dynamic import quantize_dynamic_int8
from edgecompress.techniques.quantize.onnx_lowbit import cast_fp16, quantize_int4_weights
from edgecompress.techniques.quantize.onnx_static import nodes_using, quantize_static_int8
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
    def write(keep_float_weights: tuple[str, ...], weight_bits: int) -> Path:
        source_graph = onnx.load(str(state.onnx_path), load_external_data=False).graph
        excluded = tuple(nodes_using(source_graph, keep_float_weights))
        return quantize_dynamic_int8(
            state.onnx_path, ctx.artifact_path, per_channel=config.per_channel, exclude_nodes=excluded, weight_bits=weight_bits
        )

    return _int8(config, state, ctx, write)


def cast_fp16_stage(config: CastFp16, state: ModelState, ctx: StageContext) -> ModelState:
    cast_fp16(state.onnx_path, ctx.artifact_path)
    return ModelState(None, ctx.artifact_path, state.params, state.nonzero_params, state.macs)


def quantize_int4_stage(config: QuantizeInt4, state: ModelState, ctx: StageContext) -> ModelState:
    quantize_int4_weights(state.onnx_path, ctx.artifact_path, block_size=config.block_size)
    return ModelState(None, ctx.artifact_path, state.params, state.nonzero_params, state.macs)


def qat_stage(config: Qat, state: ModelState, ctx: StageContext) -> ModelState:
    task = ctx.require_task("qat")
    model = copy.deepcopy(state.torch_model)
    layers = select_layers(model, config.layers, keep=config.keep, keep_classifier=False)
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
