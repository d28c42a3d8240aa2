"""One handler per stage config: config type -> function. Adding a technique adds a config and a handler."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import onnx
import torch
from torch import nn

from edgecompress.core.evaluate import score_onnx
from edgecompress.core.masks import finalize
from edgecompress.core.progress import console
from edgecompress.core.tasks.checks import FiniteBatches
from edgecompress.core.tasks.task import Task
from edgecompress.core.train import train_epochs
from edgecompress.orchestration.pipeline.stages import Factorize, Finetune, Prune, Qat, Quantize, StageConfig
from edgecompress.runtime.feeds import input_feeds
from edgecompress.runtime.targets import DEFAULT_TARGET
from edgecompress.techniques.lowrank import factorize
from edgecompress.techniques.prune.engine import prune_model
from edgecompress.techniques.prune.selection import select_layers
from edgecompress.techniques.prune.sparsity_paths import sparsity_paths
from edgecompress.techniques.quantize.exact_int8 import ensure_exact_int8
from edgecompress.techniques.quantize.mixed_precision import explicit_float_layers, quantize_within_tolerance
from edgecompress.techniques.quantize.onnx_dynamic import quantize_dynamic_int8
from edgecompress.techniques.quantize.onnx_lowbit import cast_fp16, quantize_int4_weights
from edgecompress.techniques.quantize.onnx_static import nodes_using, quantize_static_int8
from edgecompress.techniques.quantize.qat import prepare_qat


@dataclass
class ModelState:
    """The model between stages: a torch module while torch stages run, then only its ONNX file."""

    torch_model: nn.Module | None
    onnx_path: Path | None = None
    params: int = 0
    nonzero_params: int = 0
    macs: int = 0
    details: dict = field(default_factory=dict)  # stage-specific findings reported in metrics.json


@dataclass
class StageContext:
    task: Task
    example_input: torch.Tensor
    teacher: nn.Module  # the uncompressed baseline
    artifact_path: Path  # where a stage that writes ONNX itself must put it
    label: str  # e.g. "stage 2/3 (finetune)", for progress and errors
    seed: int = 0
    score_fn: Callable | None = None  # a Python callable for Prune(criterion="custom"), from the API
    target: str = DEFAULT_TARGET  # the CPU class the artifact must be exact on (runtime/targets.py)


Handler = Callable[[StageConfig, ModelState, StageContext], ModelState]
HANDLERS: dict[type[StageConfig], Handler] = {}


def handler(config_type: type[StageConfig]):
    def register(fn: Handler) -> Handler:
        HANDLERS[config_type] = fn
        return fn

    return register


@handler(Prune)
def _prune(config: Prune, state: ModelState, ctx: StageContext) -> ModelState:
    model = copy.deepcopy(state.torch_model)

    def train(epochs: int, callbacks=()) -> None:
        train_epochs(
            model, ctx.task, epochs, lr=config.lr, description=ctx.label, callbacks=callbacks,
            teacher=ctx.teacher if config.distill > 0 else None, distill_weight=config.distill,
        )

    prune_model(
        model, config, ctx.example_input, train,
        batches=FiniteBatches(ctx.task.train_loader, "prune.calibration_batches"), loss_fn=ctx.task.loss_fn, seed=ctx.seed, score_fn=ctx.score_fn,
    )
    return ModelState(model, details={"prune_paths": sparsity_paths(state.torch_model, model, config)})


@handler(Finetune)
def _finetune(config: Finetune, state: ModelState, ctx: StageContext) -> ModelState:
    model = copy.deepcopy(state.torch_model)
    train_epochs(
        model,
        ctx.task,
        config.epochs,
        lr=config.lr,
        weight_decay=config.weight_decay,
        description=ctx.label,
        teacher=ctx.teacher if config.distill > 0 else None,
        distill_weight=config.distill,
        temperature=config.temperature,
    )
    return ModelState(model)


@handler(Factorize)
def _factorize(config: Factorize, state: ModelState, ctx: StageContext) -> ModelState:
    model = finalize(copy.deepcopy(state.torch_model))  # masks first become plain zeros, then the SVD
    energy = config.energy
    ranks = factorize(model, config.layers, keep=None if energy is not None else config.keep, energy=energy, keep_classifier=config.keep_classifier, convs=config.convs)
    return ModelState(model, details={"factorization": {name: {"rank": r, "full_rank": f} for name, (r, f) in ranks.items()}})


@handler(Qat)
def _qat(config: Qat, state: ModelState, ctx: StageContext) -> ModelState:
    model = copy.deepcopy(state.torch_model)
    layers = select_layers(model, config.layers, keep=config.keep, keep_classifier=False)
    prepare_qat(layers, config.bits, config.ternary_rule)
    train_epochs(
        model, ctx.task, config.epochs, lr=config.lr, description=ctx.label,
        teacher=ctx.teacher if config.distill > 0 else None, distill_weight=config.distill,
    )
    return ModelState(model)


@handler(Quantize)
def _quantize(config: Quantize, state: ModelState, ctx: StageContext) -> ModelState:
    decision = DecisionData(ctx.task)

    exactness: dict = {}

    def quantize(keep_float_weights: tuple[str, ...]) -> Path:
        def write(weight_bits: int) -> Path:
            if config.mode == "dynamic":
                source_graph = onnx.load(str(state.onnx_path), load_external_data=False).graph
                excluded = tuple(nodes_using(source_graph, keep_float_weights))
                return quantize_dynamic_int8(
                    state.onnx_path, ctx.artifact_path, per_channel=config.per_channel, exclude_nodes=excluded, weight_bits=weight_bits
                )
            return quantize_static_int8(
                state.onnx_path,
                ctx.artifact_path,
                FiniteBatches(ctx.task.train_loader, "quantize.calibration_batches"),
                max_batches=config.calibration_batches,
                per_channel=config.per_channel,
                method=config.calibration,
                graph_format=config.format,
                keep_float=keep_float_weights,
                weight_bits=weight_bits,
            )

        exactness.update(ensure_exact_int8(write, input_feeds(ctx.task.train_loader, state.onnx_path), ctx.target, ctx.label))
        return ctx.artifact_path

    if config.mode == "fp16":
        cast_fp16(state.onnx_path, ctx.artifact_path)
        return ModelState(None, ctx.artifact_path, state.params, state.nonzero_params, state.macs)
    if config.mode == "int4":
        quantize_int4_weights(state.onnx_path, ctx.artifact_path, block_size=config.block_size)
        return ModelState(None, ctx.artifact_path, state.params, state.nonzero_params, state.macs)
    keep = explicit_float_layers(state.torch_model, config.keep_float) if state.torch_model is not None else []
    details = {}
    if config.tolerance is None or state.torch_model is None:
        quantize(tuple(f"{name}.weight" for name in keep))
        if keep:
            details["quantization"] = {"kept_float": keep}
    else:
        report = quantize_within_tolerance(
            state.torch_model,
            quantize,
            decision.score,
            decision.score(state.onnx_path),
            ctx.task.metric.higher_is_better,
            ctx.task.train_loader,
            config.tolerance,
            keep,
        )
        details["quantization"] = report.to_json()
        details["quantization"]["decided_on"] = decision.name
        if not report.within_tolerance:
            console.log(f"{ctx.label}: even with every layer in float the drop exceeds {config.tolerance}")
    details["int8"] = exactness
    # Quantization changes how weights are stored, not how many there are or the work done per input.
    return ModelState(None, ctx.artifact_path, state.params, state.nonzero_params, state.macs, details)


class DecisionData:
    """Scores used to make choices: the task's validation loader, else its training loader; never the eval set."""

    def __init__(self, task: Task):
        loader = task.val_loader if task.val_loader is not None else task.train_loader
        self.name = "validation data" if task.val_loader is not None else "training data"
        self._task = task.scored_on(loader)

    def score(self, path: Path) -> float:
        return score_onnx(path, self._task)
