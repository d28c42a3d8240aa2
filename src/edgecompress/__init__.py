"""edgecompress: make PyTorch models small and fast enough for edge devices, with honest measurements.

>>> import edgecompress as ec
>>> task = ec.Task("mine", train_loader, eval_loader, ec.Metric("accuracy", my_accuracy))  # doctest: +SKIP
>>> result = ec.compress(model, task, ec.default_recipe(), "runs/mine")                   # doctest: +SKIP
"""

from importlib.metadata import PackageNotFoundError, version

from edgecompress.errors import RunFailure, UserError
from edgecompress.inspect import advise_target_size, check_saved_size, layer_table
from edgecompress.models import load_model
from edgecompress.pipeline.run import Measurement, RunResult, compress
from edgecompress.pipeline.stages import Factorize, Finetune, Prune, Qat, Quantize, default_recipe
from edgecompress.tasks import Metric, Task
from edgecompress.train import train_epochs

try:
    __version__ = version("edgecompress")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0"

__all__ = [
    "compress", "default_recipe", "Prune", "Finetune", "Factorize", "Qat", "Quantize",
    "Task", "Metric", "RunResult", "Measurement",
    "layer_table", "advise_target_size", "check_saved_size", "load_model",
    "UserError", "RunFailure", "train_epochs",
]
