"""Sentence encoders (all-MiniLM-L6-v2 and other Hugging Face BERT-style encoders) as a model family: a task
(`task.py`) and presets (`presets.py`) on the one pipeline.

>>> import edgecompress as ec
>>> from edgecompress.families.encoder import load_encoder, route_stages, sentence_encoder_task
>>> encoder = load_encoder()  # doctest: +SKIP
>>> result = ec.compress(encoder.model, sentence_encoder_task(encoder), route_stages("int8"), "runs/minilm-int8")  # doctest: +SKIP
"""

from edgecompress.families.encoder.artifact import embed
from edgecompress.families.encoder.model_dir import load_encoder
from edgecompress.families.encoder.presets import ROUTES, route_stages
from edgecompress.families.encoder.task import sentence_encoder_task

__all__ = ["ROUTES", "embed", "load_encoder", "route_stages", "sentence_encoder_task"]
