"""Model families by task name: how a recipe's `model:` loads for the task, and the task it runs on.

A family is a task plus presets, not a pipeline of its own: `resolve_recipe` asks this table for the model
and the task, and everything after that (stages, export, measuring, report) is the one pipeline's.
"""

from __future__ import annotations

from typing import Callable

from edgecompress.core.errors import UserError
from edgecompress.core.models.loading import LoadedModel
from edgecompress.core.tasks.task import Task


def _sentence_encoder(model: str, seed: int) -> tuple[LoadedModel, Task]:
    from edgecompress.families.encoder.model_dir import load_encoder
    from edgecompress.families.encoder.presets import BUILTIN_ENCODER
    from edgecompress.families.encoder.task import sentence_encoder_task

    encoder = load_encoder(None if model == BUILTIN_ENCODER else model)
    return LoadedModel(encoder.model, source=str(encoder.directory)), sentence_encoder_task(encoder, seed)


def _language_model(model: str, seed: int) -> tuple[LoadedModel, Task]:
    from edgecompress.families.lm.builtin import BUILTIN_LM
    from edgecompress.families.lm.model_dir import load_decoder
    from edgecompress.families.lm.task import language_model_task

    decoder = load_decoder(None if model == BUILTIN_LM else model)
    return LoadedModel(decoder.model, source=str(decoder.directory)), language_model_task(decoder, seed)


# task name -> (recipe `model:`, seed) -> the loaded model and its task
FAMILIES: dict[str, Callable[[str, int], tuple[LoadedModel, Task]]] = {
    "sentence-encoder": _sentence_encoder,
    "language-model": _language_model,
}

FAMILY_MODELS = {
    "sentence-encoder": "minilm (the bundled all-MiniLM-L6-v2) or a Hugging Face encoder directory",
    "language-model": "stdlib-coder (the built-in decoder, trained once per machine) or a Hugging Face decoder directory",
}


def load_family(task: str, model: str, seed: int, weights: str | None = None) -> tuple[LoadedModel, Task]:
    """The model and task of a family's recipe; `weights` do not apply (the model directory holds them)."""
    if weights is not None:
        raise UserError(f"weights: the {task} task loads its weights from model: ({FAMILY_MODELS[task]}); remove weights")
    return FAMILIES[task](model, seed)
