"""Turn a model spec from the command line into an nn.Module, without running untrusted code by default.

A spec is one of:
- a built-in name (`digits-cnn`);
- `package.module:function` or `path/to/file.py:function`, a function returning an nn.Module;
- a saved file: `.safetensors` or a state_dict `.pt` (loaded with `weights_only=True`) needs an architecture
  (`arch`) to load into; a whole pickled module (`torch.save(model)`) is loaded only with `trust_pickle=True`,
  because unpickling it can run arbitrary code.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pickle
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from edgecompress.errors import UserError
from edgecompress.models.registry import BUILTIN_MODELS
from edgecompress.paths import check_input_file, check_path_length

_WEIGHT_SUFFIXES = {".pt", ".pth", ".bin", ".ckpt", ".safetensors"}


@dataclass
class LoadedModel:
    """A model plus where it came from: `saved_file` is set when the user gave a file (for the size check)."""

    module: nn.Module
    source: str
    default_input_shape: tuple[int, ...] | None = None
    saved_file: Path | None = None


def load_model(spec: str, weights: str | None = None, trust_pickle: bool = False) -> LoadedModel:
    """Resolve `spec` (see module docstring) and optionally load `weights` into it.

    >>> load_model("digits-cnn").module.fc2.out_features
    10
    """
    spec = spec.strip()
    check_path_length(spec, "model")
    path = Path(spec)
    if spec in BUILTIN_MODELS:
        builtin = BUILTIN_MODELS[spec]
        loaded = LoadedModel(builtin.factory(), spec, builtin.input_shape)
    elif path.suffix in _WEIGHT_SUFFIXES or path.is_file():
        if weights is not None:
            raise UserError(f"--weights: {spec} is already a file; give --weights only with a built-in or module:function")
        return _load_saved_file(path, trust_pickle)
    elif ":" in spec:
        loaded = LoadedModel(_call_factory(spec), spec)
    else:
        names = ", ".join(sorted(BUILTIN_MODELS))
        raise UserError(
            f"model: unknown model {spec!r}; use a built-in name ({names}), "
            "a module:function returning an nn.Module, or a saved model file"
        )
    if weights is not None:
        _load_weights_into(loaded.module, Path(weights))
        loaded.saved_file = Path(weights)
    return loaded


def _load_weights_into(model: nn.Module, path: Path) -> None:
    from edgecompress.models.checkpoint import read_metadata, resize_to_saved

    check_input_file(path, "--weights")
    if path.suffix == ".safetensors" and "edgecompress.layer_sizes" in _metadata(path, read_metadata):
        resize_to_saved(model, path)  # a compressed model saved by edgecompress: layers may have new sizes
        return
    _load_state_into(model, load_state_dict(path, field="--weights"), str(path))


def _metadata(path: Path, reader) -> dict:
    try:
        return reader(path)
    except Exception:  # not a readable safetensors header: load_state_dict reports it properly
        return {}


def import_attribute(spec: str, field: str = "model"):
    """Resolve `package.module:name` or `path/file.py:name` to the named object."""
    module_name, _, func_name = spec.rpartition(":")
    if not module_name or not func_name:
        raise UserError(f"{field}: {spec!r} is not module:function; write it as package.module:function")
    module = _import(module_name, spec, field)
    attribute = getattr(module, func_name, None)
    if attribute is None:
        raise UserError(f"{field}: {module_name!r} has no attribute {func_name!r}; check the function name in {spec!r}")
    return attribute


def call_factory(factory, spec: str, field: str):
    """What a `module:function` spec names: the function's result, or the object itself if not callable.

    A function that needs arguments is refused before it is called (`os:system` must not run `os.system()`).
    """
    if not callable(factory):
        return factory
    try:
        inspect.signature(factory).bind()
    except TypeError:
        raise UserError(f"{field}: {spec} needs arguments; name a function that takes none") from None
    except ValueError:  # no signature to read (some built-ins): call it as it is
        pass
    return factory()


def _call_factory(spec: str) -> nn.Module:
    model = call_factory(import_attribute(spec), spec, "model")
    if not isinstance(model, nn.Module):
        raise UserError(f"model: {spec} returned {type(model).__name__}, not a torch.nn.Module")
    return model


def _import(module_name: str, spec: str, field: str):
    if module_name.endswith(".py"):
        file = check_input_file(module_name, field)
        import_spec = importlib.util.spec_from_file_location(file.stem, file)
        module = importlib.util.module_from_spec(import_spec)
        import_spec.loader.exec_module(module)
        return module
    if not all(part.isidentifier() for part in module_name.split(".")):
        raise UserError(
            f"{field}: {module_name!r} in {spec!r} is not an absolute module name (relative or malformed); "
            "write it as package.module:function"
        )
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise UserError(f"{field}: cannot import module {exc.name!r} for {spec!r}; check the name and PYTHONPATH") from None


def load_state_dict(path: Path, field: str) -> dict[str, torch.Tensor]:
    """Load tensors only: safetensors, or torch.load with weights_only=True (never arbitrary unpickling)."""
    check_input_file(path, field)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as exc:  # safetensors raises several types for a corrupt header
            raise UserError(f"{field}: {path} is not a valid safetensors file ({exc})") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise UserError(
            f"{field}: {path} holds pickled Python objects, not plain tensors; loading it could run code. "
            "Pass --trust-pickle only if you trust its source"
        ) from None
    except Exception as exc:
        raise UserError(f"{field}: cannot read {path} as a PyTorch file ({type(exc).__name__})") from None
    if isinstance(state, nn.Module):
        state = state.state_dict()
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"{field}: {path} is not a state_dict (a mapping of names to tensors)")
    return state


def _load_state_into(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise UserError(f"--weights: {source} does not match the architecture: {first}") from None


def _load_saved_file(path: Path, trust_pickle: bool) -> LoadedModel:
    check_input_file(path, "model")
    if trust_pickle and path.suffix != ".safetensors":
        try:
            obj = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc:
            raise UserError(f"model: cannot load {path} ({type(exc).__name__}: {exc})") from None
        if isinstance(obj, nn.Module):
            return LoadedModel(obj, str(path), saved_file=path)
        raise UserError(f"model: {path} holds a {type(obj).__name__}, not an nn.Module; give the architecture as module:function and the file as --weights")
    if path.suffix == ".safetensors":
        from edgecompress.models.checkpoint import read_metadata

        arch = _metadata(path, read_metadata).get("edgecompress.arch")
        if arch:
            return load_model(arch, weights=str(path))
    state = load_state_dict(path, field="model")
    raise UserError(
        f"model: {path} holds only weights ({len(state)} tensors), not an architecture; "
        "give the architecture as --model module:function (or a built-in name) and this file as --weights"
    )
