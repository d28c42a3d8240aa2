"""edgecompress: make PyTorch models small and fast enough for edge devices, with honest measurements.

>>> import edgecompress as ec
>>> task = ec.Task("mine", train_loader, eval_loader, ec.Metric("accuracy", my_accuracy))  # doctest: +SKIP
>>> result = ec.compress(model, task, ec.default_recipe(), "runs/mine")                   # doctest: +SKIP
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from edgecompress.core.errors import RunFailure, UserError
from edgecompress.core.lazy import lazy_exports

try:
    __version__ = version("edgecompress")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0"

# Names load on first use (PEP 562): `import edgecompress` stays light (no onnxruntime, matplotlib,
# torch_pruning or transformers until a function needs them); tests/test_architecture.py checks it.
_LAZY = {
    "apply": "edgecompress.orchestration.pipeline.apply",
    "compress": "edgecompress.orchestration.pipeline.run",
    "RunResult": "edgecompress.orchestration.pipeline.run",
    "Measurement": "edgecompress.orchestration.pipeline.run",
    "default_recipe": "edgecompress.orchestration.pipeline.stages",
    "Prune": "edgecompress.orchestration.pipeline.stages",
    "Finetune": "edgecompress.orchestration.pipeline.stages",
    "Factorize": "edgecompress.orchestration.pipeline.stages",
    "Qat": "edgecompress.orchestration.pipeline.stages",
    "BlockQat": "edgecompress.orchestration.pipeline.stages",
    "Distill": "edgecompress.orchestration.pipeline.stages",
    "RemoveFfn": "edgecompress.orchestration.pipeline.stages",
    "RemoveHeads": "edgecompress.orchestration.pipeline.stages",
    "RemoveLayers": "edgecompress.orchestration.pipeline.stages",
    "SparseGPT": "edgecompress.orchestration.pipeline.stages",
    "Quantize": "edgecompress.orchestration.pipeline.stages",
    "QuantizeStatic": "edgecompress.orchestration.pipeline.stages",
    "QuantizeDynamic": "edgecompress.orchestration.pipeline.stages",
    "CastFp16": "edgecompress.orchestration.pipeline.stages",
    "QuantizeInt4": "edgecompress.orchestration.pipeline.stages",
    "Unstructured": "edgecompress.orchestration.pipeline.stages",
    "Channels": "edgecompress.orchestration.pipeline.stages",
    "Blocks": "edgecompress.orchestration.pipeline.stages",
    "NM": "edgecompress.orchestration.pipeline.stages",
    "Magnitude": "edgecompress.orchestration.pipeline.stages",
    "Random": "edgecompress.orchestration.pipeline.stages",
    "Taylor": "edgecompress.orchestration.pipeline.stages",
    "Wanda": "edgecompress.orchestration.pipeline.stages",
    "Movement": "edgecompress.orchestration.pipeline.stages",
    "Custom": "edgecompress.orchestration.pipeline.stages",
    "OwnMasks": "edgecompress.orchestration.pipeline.stages",
    "Task": "edgecompress.core.tasks",
    "Metric": "edgecompress.core.tasks",
    "train_epochs": "edgecompress.core.train",
    "load_model": "edgecompress.core.models",
    "layer_table": "edgecompress.inspect",
    "advise_target_size": "edgecompress.inspect",
    "check_saved_size": "edgecompress.inspect",
    "load_recipe": "edgecompress.orchestration.recipe",
    "run_recipe": "edgecompress.orchestration.recipe",
    "sweep": "edgecompress.orchestration.curves",
    "layer_sensitivity": "edgecompress.orchestration.curves.sensitivity",
    "fit": "edgecompress.orchestration.search.fit",
    "pack": "edgecompress.delivery",
    "unpack": "edgecompress.delivery",
    "verify": "edgecompress.orchestration.verify",
}

__all__ = ["UserError", "RunFailure", "__version__", *_LAZY]
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
