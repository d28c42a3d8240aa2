"""torch.onnx.export (dynamo) that traces each architecture once per process and refills its weights after.

Every stage of a run exports its model to measure it, and most stages change only weights (masks and fake
quantization are baked into plain weights before export). Tracing is nearly all of an export's cost: a
two-layer decoder with its key/value cache takes 10-15 s to trace and decompose, a digits CNN about 1 s,
while the graph that comes out is the same each time. So the exporter's graph, before its optimizer
folds anything, is kept with its weights removed; a later export of the same architecture copies it, puts
the module's current parameters and buffers into the initializers of the same names, and runs the same
optimizer. A fresh export runs through exactly these steps too, so both give the same bytes (tested).

The key is the architecture as the tracer sees it: every submodule's class and its plain attributes
(sizes, flags, configs; tensor attributes by value), every parameter's and buffer's name, shape and dtype,
and the example inputs' shapes and the export arguments. Anything the key cannot describe (an attribute
whose repr is an address), forward hooks, or an unoptimized graph with an initializer that is not a named
parameter or buffer (a constant the tracer derived) is simply not cached: that export runs as it comes.
torch offers no such reuse (its ExportedProgram still goes through decomposition and translation), hence
this module.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import types
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

MAX_ARCHITECTURES = 8  # weightless graphs kept per process: a few kB to a few MB each
_TORCH_MODULE_STATE = frozenset(vars(nn.Module()))  # what nn.Module itself keeps in __dict__
_FORWARD_HOOKS = ("_forward_hooks", "_forward_pre_hooks")
_TEMPLATES: OrderedDict[str, onnx.ModelProto] = OrderedDict()


@dataclass
class CacheInfo:
    hits: int = 0
    misses: int = 0
    uncacheable: int = 0


_INFO = CacheInfo()


class _Uncacheable(Exception):
    """Something the key cannot describe reliably."""


def export_program(module: nn.Module, args: tuple, *, input_names: list[str], output_names: list[str], dynamic_shapes,
                   opset_version: int | None = None) -> onnx.ModelProto:
    """The optimized ONNX model of `module` traced on `args` (torch.onnx.export, dynamo), its weights embedded;
    `opset_version` None is the exporter's default.

    >>> proto = export_program(model, (x,), input_names=["input"], output_names=["output"], dynamic_shapes=({0: batch},))  # doctest: +SKIP
    """
    tensors = _named_tensors(module)
    key = architecture_key(module, args, input_names=input_names, output_names=output_names, dynamic_shapes=dynamic_shapes, opset_version=opset_version)
    template = _TEMPLATES.get(key) if key else None
    if template is not None:
        _TEMPLATES.move_to_end(key)
        _INFO.hits += 1
        return _optimized(_with_weights(template, tensors))
    program = torch.onnx.export(module, args, input_names=input_names, output_names=output_names, dynamic_shapes=dynamic_shapes,
                                opset_version=opset_version, dynamo=True, external_data=False, verbose=False, optimize=False)
    raw = program.model_proto
    template = _weightless(raw, tensors) if key else None
    if template is None:
        _INFO.uncacheable += 1
        return _optimized(raw)
    _INFO.misses += 1
    _TEMPLATES[key] = template
    while len(_TEMPLATES) > MAX_ARCHITECTURES:
        _TEMPLATES.popitem(last=False)
    return _optimized(_with_weights(template, tensors))


def cache_info() -> CacheInfo:
    """Hits, misses and uncacheable exports in this process so far (a copy)."""
    return CacheInfo(_INFO.hits, _INFO.misses, _INFO.uncacheable)


def clear_cache() -> None:
    _TEMPLATES.clear()


def architecture_key(module: nn.Module, args: tuple, **export_arguments) -> str | None:
    """A digest of everything besides weight values that decides the traced graph, or None if unsure."""
    try:
        parts = [_describe(args, values=False), _describe(export_arguments, values=False)]  # example inputs: shapes only
        for name, sub in module.named_modules(remove_duplicate=False):
            if any(getattr(sub, hooks) for hooks in _FORWARD_HOOKS):
                raise _Uncacheable(f"{name}: forward hook")
            attributes = {k: v for k, v in vars(sub).items() if k not in _TORCH_MODULE_STATE and not isinstance(v, nn.Module)}
            parts.append((name, _qualified(type(sub)), sub.training, _describe(attributes, values=True)))
        parts.append([(name, tuple(t.shape), str(t.dtype)) for name, t in _named_tensors(module).items()])
        parts.append(_describe(_global_hooks(), values=False))
    except _Uncacheable:
        return None
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def _global_hooks() -> tuple:
    from torch.nn.modules import module as torch_module

    found = tuple(len(getattr(torch_module, name, {}) or {}) for name in ("_global_forward_hooks", "_global_forward_pre_hooks"))
    if any(found):
        raise _Uncacheable("global forward hooks")
    return found


def _named_tensors(module: nn.Module) -> dict[str, torch.Tensor]:
    """Parameters and buffers (non-persistent ones too) under every name they have: the exporter names an
    initializer after one of them, and a tied weight after any of its names."""
    tensors = dict(module.named_parameters(remove_duplicate=False))
    tensors.update(module.named_buffers(remove_duplicate=False))
    return tensors


def _describe(value, values: bool) -> object:
    """A repr-able description that is equal for equal architectures and never names a memory address."""
    if value is None or isinstance(value, (bool, int, float, str, bytes, enum.Enum, torch.dtype, torch.device)):
        return repr(value)
    if isinstance(value, torch.Tensor):
        data = hashlib.sha256(value.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes()).hexdigest() if values else None
        return ("tensor", tuple(value.shape), str(value.dtype), data)
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_describe(v, values) for v in value]
        return (type(value).__name__, sorted(items, key=repr) if isinstance(value, (set, frozenset)) else items)
    if isinstance(value, dict):
        return ("dict", sorted(((repr(k), _describe(v, values)) for k, v in value.items()), key=repr))
    if isinstance(value, functools.partial):
        return ("partial", _describe(value.func, values), _describe(value.args, values), _describe(value.keywords, values))
    if isinstance(value, (type, types.FunctionType, types.BuiltinFunctionType)):
        return _qualified(value)
    if isinstance(value, types.MethodType):
        return ("method", _qualified(value.__func__), _qualified(type(value.__self__)))
    if callable(getattr(value, "to_dict", None)):  # a transformers config (its attention kernel is kept outside the dict)
        return (_qualified(type(value)), _describe(value.to_dict(), values), repr(getattr(value, "_attn_implementation", None)))
    text = repr(value)
    if " at 0x" in text or " object at " in text:
        raise _Uncacheable(f"cannot describe {type(value).__name__}")
    return (_qualified(type(value)), text)


def _qualified(kind) -> str:
    return f"{getattr(kind, '__module__', '?')}.{getattr(kind, '__qualname__', repr(kind))}"


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().contiguous().numpy()


def _weightless(model: onnx.ModelProto, tensors: dict[str, torch.Tensor]) -> onnx.ModelProto | None:
    """`model` with every initializer's data removed, or None if one is not a parameter or buffer of that name
    (its value would not be refilled) or the graph has subgraphs (initializers could hide there)."""
    if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for n in model.graph.node for a in n.attribute):
        return None
    template = onnx.ModelProto()
    template.CopyFrom(model)
    for init in template.graph.initializer:
        tensor = tensors.get(init.name)
        if tensor is None or list(init.dims) != list(tensor.shape):
            return None
        try:
            if onnx.helper.tensor_dtype_to_np_dtype(init.data_type) != _numpy(tensor).dtype:
                return None
        except (TypeError, KeyError):  # bfloat16 and other types numpy has no dtype for
            return None
        init.CopyFrom(onnx.TensorProto(name=init.name, data_type=init.data_type, dims=init.dims))
    return template


def _with_weights(template: onnx.ModelProto, tensors: dict[str, torch.Tensor]) -> onnx.ModelProto:
    model = onnx.ModelProto()
    model.CopyFrom(template)
    for init in model.graph.initializer:
        init.CopyFrom(numpy_helper.from_array(_numpy(tensors[init.name]), init.name))
    return model


def _optimized(model: onnx.ModelProto) -> onnx.ModelProto:
    """The exporter's own optimizer (constant folding, dead code), as `torch.onnx.export(optimize=True)` runs it."""
    try:
        import onnx_ir as ir
    except ImportError:  # onnxscript < 0.3 carried the IR itself
        from onnxscript import ir
    program = torch.onnx.ONNXProgram(ir.serde.deserialize_model(model), None)
    program.optimize()
    return program.model_proto
