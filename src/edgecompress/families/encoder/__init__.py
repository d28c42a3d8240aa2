"""Sentence encoders (all-MiniLM-L6-v2 and other Hugging Face BERT-style encoders), compressed end to end.

>>> from edgecompress.families.encoder import compress_encoder, route_recipe
>>> result = compress_encoder(route_recipe("int8"), "runs/minilm-int8")  # doctest: +SKIP
"""

from edgecompress.families.encoder.artifact import embed
from edgecompress.families.encoder.compress import EncoderResult, compress_encoder
from edgecompress.families.encoder.model_dir import load_encoder
from edgecompress.families.encoder.recipe import ROUTES, EncoderRecipe, route_recipe

__all__ = ["compress_encoder", "route_recipe", "EncoderRecipe", "ROUTES", "EncoderResult", "load_encoder", "embed"]
