"""torch -> ONNX, one self-contained file with a dynamic batch axis (checked on every input and output)."""

from __future__ import annotations

import functools
import importlib
from pathlib import Path

import onnx
import torch
from torch import nn

from edgecompress.core.errors import RunFailure, UserError, first_line
from edgecompress.core.masks import finalized_copy
from edgecompress.core.verbosity import quiet_libraries
from edgecompress.onnx.export_cache import export_program
from edgecompress.onnx.recurrent import fold_recurrent_weights, recurrent_layer_names
from edgecompress.storage.files import atomic_path

INPUT_NAME = "input"
OUTPUT_NAME = "output"


def export_onnx(model: nn.Module, example_input: torch.Tensor, path: str | Path) -> Path:
    """Export `model` to `path` atomically; weights are embedded (no `.onnx.data` beside it).

    The dynamo exporter is torch's maintained path (the TorchScript one is deprecated); it would write weights
    to an external file by default, which makes "the file's size" ambiguous, so we embed them.

    The batch axis stays dynamic: a one-sample example is traced as two samples, because torch.export
    specializes a size of 1 and the exporter then quietly fixes the axis at 1 wherever the graph lets it (a
    GRU over image rows did), and ONNX Runtime refuses every other batch size. A model whose graph still
    fixes axis 0 of an input or output is refused with a one-line UserError naming it. GRU and LSTM weights
    are stored once, in ONNX's layout, under their layer's name (`recurrent.py`).
    """
    model = finalized_copy(model)  # masks baked into plain weights: the mask itself must not ship
    was_training = model.training
    model.eval()
    batch = torch.export.Dim("batch", min=1)
    try:
        with atomic_path(path) as tmp, quiet_exporter():
            proto = export_program(model, (traced_batch(example_input),), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                   dynamic_shapes=({0: batch},))
            proto = fold_recurrent_weights(strip_debug_metadata(proto), recurrent_layer_names(model))
            check_dynamic_batch(proto, type(model).__name__)
            onnx.save_model(proto, str(tmp), save_as_external_data=False)
    except (RunFailure, UserError):
        raise
    except Exception as exc:
        first = first_line(exc)
        raise RunFailure(f"export: torch.onnx.export failed for {type(model).__name__}: {first}") from exc
    finally:
        model.train(was_training)
    return Path(path)


def traced_batch(example_input: torch.Tensor) -> torch.Tensor:
    """The example the exporter traces: at least two samples (a copy of the first when there is one)."""
    if example_input.dim() == 0 or example_input.shape[0] >= 2:
        return example_input
    return example_input[:1].repeat(2, *[1] * (example_input.dim() - 1))


def check_dynamic_batch(model: onnx.ModelProto, name: str = "the model") -> None:
    """A one-line UserError naming the first graph input or output whose axis 0 (the batch) is a fixed size.

    >>> check_dynamic_batch(onnx.load("model.onnx"))  # doctest: +SKIP
    """
    graph = model.graph
    initializers = {t.name for t in graph.initializer}
    for kind, values in (("input", graph.input), ("output", graph.output)):
        for value in values:
            dims = value.type.tensor_type.shape.dim
            if value.name in initializers or not dims or not dims[0].HasField("dim_value"):
                continue  # a named or unnamed symbolic size: any batch
            raise UserError(
                f"export: {name} fixes the batch axis (axis 0) of its ONNX {kind} {value.name!r} at {dims[0].dim_value}, so ONNX Runtime would "
                "refuse other batch sizes; make forward() follow x.shape[0] (no fixed batch in view/reshape or initial states)"
            )


def quiet_exporter():
    """The exporter logs progress and warnings about optional torchvision ops; users need none of it (but
    `--verbose` shows it). Every export goes through here, so it also builds the exporter's op table once."""
    build_torchlib_table_once()
    return quiet_libraries(loggers=("torch.onnx", "torch.export", "torch._export", "onnxscript"), all_warnings=True, stdout=True)


@functools.cache
def build_torchlib_table_once() -> None:
    """Make torch.onnx.export (dynamo) build its table of ONNX functions once per process, not on every call.

    The exporter rebuilds its registry on every export, and each rebuild re-parses the Python source of the
    ~500 torchlib functions (onnxscript's `function_ir` is not cached): 2.0-2.5 s of a tiny CNN's 3-5 s
    export, paid again by every stage of every run. The exporter takes no prebuilt registry, so the table
    builder it calls is wrapped in a cache; the registry only reads the table. With another torch or
    onnxscript layout this does nothing and exports run as they come.
    """
    try:
        from torch.onnx._internal._lazy_import import onnxscript_apis

        module = importlib.import_module(onnxscript_apis._name)
        table = module.get_torchlib_ops
    except (ImportError, AttributeError):
        return
    module.get_torchlib_ops = functools.cache(table)


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


def export_model(model: nn.Module, example_input, path: str | Path, task=None) -> Path:
    """The task's own exporter when it has one (a model family with named inputs, e.g. a sentence encoder's
    token ids and mask with dynamic sequence length), else `export_onnx` on `example_input`."""
    if task is not None and task.export is not None:
        return Path(task.export(model, Path(path)))
    return export_onnx(model, example_input, path)
