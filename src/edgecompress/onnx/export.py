"""torch -> ONNX, one self-contained file with a dynamic batch axis."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path

import onnx
import torch
from torch import nn

from edgecompress.core.errors import RunFailure, first_line
from edgecompress.core.masks import finalized_copy
from edgecompress.storage.files import atomic_path

INPUT_NAME = "input"
OUTPUT_NAME = "output"


def export_onnx(model: nn.Module, example_input: torch.Tensor, path: str | Path) -> Path:
    """Export `model` to `path` atomically; weights are embedded (no `.onnx.data` beside it).

    The dynamo exporter is torch's maintained path (the TorchScript one is deprecated); it would write weights
    to an external file by default, which makes "the file's size" ambiguous, so we embed them.
    """
    model = finalized_copy(model)  # masks baked into plain weights: the mask itself must not ship
    was_training = model.training
    model.eval()
    batch = torch.export.Dim("batch", min=1)
    try:
        with atomic_path(path) as tmp, quiet_exporter():
            program = torch.onnx.export(
                model,
                (example_input,),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes=({0: batch},),
                dynamo=True,
                external_data=False,
                verbose=False,
            )
            proto = strip_debug_metadata(program.model_proto)
            onnx.save_model(proto, str(tmp), save_as_external_data=False)
    except RunFailure:
        raise
    except Exception as exc:
        first = first_line(exc)
        raise RunFailure(f"export: torch.onnx.export failed for {type(model).__name__}: {first}") from exc
    finally:
        model.train(was_training)
    return Path(path)


@contextlib.contextmanager
def quiet_exporter():
    """The exporter logs progress and warnings about optional torchvision ops; users need none of it."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._export", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def strip_debug_metadata(model: onnx.ModelProto) -> onnx.ModelProto:
    """Drop the exporter's per-node debug records (Python stack traces with local paths, FX node text).

    They are ~15% of a small model's file, leak the exporting machine's paths, and make the same model
    export to different bytes on different machines. Nothing at run time reads them.
    """
    graph = model.graph
    for item in [*graph.node, *graph.input, *graph.output, *graph.value_info, *graph.initializer]:
        del item.metadata_props[:]
        item.doc_string = ""
    return model
