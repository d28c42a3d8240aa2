"""Turn a model spec from the command line into an nn.Module, without running untrusted code by default.

A spec is one of:
- a built-in name (`digits-cnn`);
- `package.module:function` or `path/to/file.py:function`, a function returning an nn.Module (naming it is
  consent to import and run it);
- a saved file: `.safetensors` or a state_dict `.pt` (loaded with `weights_only=True`) needs an architecture
  (`arch`) to load into; a `.safetensors` written by edgecompress names its own, used when it is a built-in
  one (code only with `trust_code=True`, see `metadata_arch.py`); a whole pickled module (`torch.save(model)`)
  is loaded only with `trust_pickle=True`, because unpickling it can run arbitrary code.
Every file is checked under the limits of `edgecompress.untrusted` before it is read.
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

from edgecompress.core.errors import UserError, first_line
from edgecompress.core.models.metadata_arch import ARCH_KEY, arch_from_metadata
from edgecompress.core.models.registry import BUILTIN_MODELS, WEIGHT_SUFFIXES
from edgecompress.storage.paths import check_input_file, check_path_length
from edgecompress.untrusted.limits import MAX_MODEL_BYTES
from edgecompress.untrusted.quoting import quote
from edgecompress.untrusted.regular_files import check_regular
from edgecompress.untrusted.safetensors_files import load_safetensors, read_safetensors_header


@dataclass
class LoadedModel:
    """A model plus where it came from: `saved_file` is set when the user gave a file (for the size check);
    `arch` is the built-in name or module:function that built it (None for an unpickled module)."""

    module: nn.Module
    source: str
    default_input_shape: tuple[int, ...] | None = None
    saved_file: Path | None = None
    arch: str | None = None


def load_model(spec: str, weights: str | None = None, trust_pickle: bool = False, arch: str | None = None,
               trust_code: bool = False) -> LoadedModel:
    """Resolve `spec` (see module docstring) and optionally load `weights` into it.

    `arch` gives the architecture of a saved weights file yourself (a built-in name or module:function);
    `trust_code` lets a file's own metadata name a module:function, which is then imported and run.

    >>> load_model("digits-cnn").module.fc2.out_features
    10
    >>> load_model("runs/mine/model.safetensors", arch="mypkg.models:build")  # doctest: +SKIP
    """
    spec = spec.strip()
    check_path_length(spec, "model")
    path = Path(spec)
    if spec in BUILTIN_MODELS or not (path.suffix in WEIGHT_SUFFIXES or path.is_file()):
        if arch is not None:
            raise UserError(f"--arch: {quote(spec)} already names the architecture; give --arch only with a saved weights file")
        loaded = build_architecture(spec)
        if weights is not None:
            _with_weights(loaded, Path(weights))
        return loaded
    if weights is not None:
        raise UserError(f"--weights: {spec} is already a file; give --weights only with a built-in or module:function")
    if arch is not None:  # the user names the code: consent, and the file's metadata is not consulted
        return _with_weights(build_architecture(arch.strip(), field="--arch"), path)
    return _load_saved_file(path, trust_pickle, trust_code)


def build_architecture(spec: str, field: str = "model") -> LoadedModel:
    """A freshly built model from a built-in name or a module:function the user named."""
    if spec in BUILTIN_MODELS:
        builtin = BUILTIN_MODELS[spec]
        return LoadedModel(builtin.build(), spec, builtin.input_shape, arch=spec)
    if ":" in spec:
        return LoadedModel(_call_factory(spec, field), spec, arch=spec)
    names = ", ".join(sorted(BUILTIN_MODELS))
    raise UserError(
        f"{field}: unknown model {quote(spec)}; use a built-in name ({names}), "
        "a module:function returning an nn.Module, or a saved model file"
    )


def _with_weights(loaded: LoadedModel, path: Path) -> LoadedModel:
    _load_weights_into(loaded.module, path)
    loaded.saved_file = path
    return loaded


def _load_weights_into(model: nn.Module, path: Path) -> None:
    from edgecompress.core.models.checkpoint import KEPT_ENTRIES_KEY, LAYER_SIZES_KEY, resize_to_saved

    check_input_file(path, "--weights")
    if path.suffix == ".safetensors" and {LAYER_SIZES_KEY, KEPT_ENTRIES_KEY} & set(read_safetensors_header(path, "--weights").metadata):
        resize_to_saved(model, path, field="--weights")  # a compressed model saved by edgecompress: layers may have new sizes
        return
    _load_state_into(model, load_state_dict(path, field="--weights"), str(path))


def import_attribute(spec: str, field: str = "model"):
    """Resolve `package.module:name` or `path/file.py:name` to the named object."""
    module_name, _, func_name = spec.rpartition(":")
    if not module_name or not func_name:
        raise UserError(f"{field}: {quote(spec)} is not module:function; write it as package.module:function")
    module = _import(module_name, spec, field)
    attribute = getattr(module, func_name, None)
    if attribute is None:
        raise UserError(f"{field}: {quote(module_name)} has no attribute {quote(func_name)}; check the function name in {quote(spec)}")
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
        raise UserError(f"{field}: {quote(spec)} needs arguments; name a function that takes none") from None
    except ValueError:  # no signature to read (some built-ins): call it as it is
        pass
    return factory()


def _call_factory(spec: str, field: str = "model") -> nn.Module:
    model = call_factory(import_attribute(spec, field), spec, field)
    if not isinstance(model, nn.Module):
        raise UserError(f"{field}: {quote(spec)} returned {type(model).__name__}, not a torch.nn.Module")
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
        raise UserError(f"{field}: cannot import module {exc.name!r} for {quote(spec)}; check the name and PYTHONPATH") from None


def load_state_dict(path: Path, field: str) -> dict[str, torch.Tensor]:
    """Load tensors only: safetensors, or torch.load with weights_only=True (never arbitrary unpickling)."""
    check_input_file(path, field)
    if path.suffix == ".safetensors":
        return load_safetensors(path, field)[0]
    check_regular(path, f"{field}: file", MAX_MODEL_BYTES)
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
        raise UserError(f"--weights: {source} does not match the architecture: {first[:300]}") from None


def _load_saved_file(path: Path, trust_pickle: bool, trust_code: bool) -> LoadedModel:
    check_input_file(path, "model")
    if trust_pickle and path.suffix != ".safetensors":
        check_regular(path, "model: file", MAX_MODEL_BYTES)
        try:
            obj = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc:
            raise UserError(f"model: cannot load {path} ({type(exc).__name__}: {first_line(exc)[:200]})") from None
        if isinstance(obj, nn.Module):
            return LoadedModel(obj, str(path), saved_file=path)
        raise UserError(f"model: {path} holds a {type(obj).__name__}, not an nn.Module; give the architecture as module:function and the file as --weights")
    if path.suffix == ".safetensors":
        named = read_safetensors_header(path, "model").metadata.get(ARCH_KEY)
        if named:
            return _with_weights(build_architecture(arch_from_metadata(named, path, trust_code)), path)
    state = load_state_dict(path, field="model")
    raise UserError(
        f"model: {path} holds only weights ({len(state)} tensors), not an architecture; "
        "give the architecture with --arch (a built-in name or module:function), or as the model and this file as --weights"
    )
