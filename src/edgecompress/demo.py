"""The main job on the built-in default: train the digits CNN, compress it, measure everything in ONNX Runtime."""

from __future__ import annotations

from pathlib import Path

from edgecompress.files import prepare_output_dir
from edgecompress.models import DigitsCNN
from edgecompress.pipeline.run import RunResult, compress
from edgecompress.pipeline.stages import default_recipe
from edgecompress.progress import console
from edgecompress.seeding import seed_everything
from edgecompress.tasks.digits import digits_task
from edgecompress.train import train_epochs

BASELINE_EPOCHS = 40
BASELINE_LR = 2e-3


def run_demo(out_dir: str | Path = "runs/demo", seed: int = 0) -> RunResult:
    """Train the baseline CNN on digits (98.1-98.9% test accuracy over seeds 0-5), then prune, fine-tune and quantize it.

    >>> result = run_demo("runs/demo")  # doctest: +SKIP
    """
    prepare_output_dir(out_dir)
    seed_everything(seed)
    task = digits_task(seed)
    model = DigitsCNN()
    console.log("training the baseline digits CNN (53,002 parameters)")
    train_epochs(model, task, BASELINE_EPOCHS, lr=BASELINE_LR, description="baseline")
    return compress(model, task, default_recipe(), out_dir, seed=seed)
