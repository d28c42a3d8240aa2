"""Sentence encoders (all-MiniLM-L6-v2 and other Hugging Face BERT-style encoders), compressed end to end.

>>> from edgecompress.encoders import compress_encoder, route_recipe
>>> result = compress_encoder(route_recipe("int8"), "runs/minilm-int8")  # doctest: +SKIP
"""

from edgecompress.encoders.artifact import embed
from edgecompress.encoders.compress import EncoderResult, compress_encoder
from edgecompress.encoders.model_dir import load_encoder
from edgecompress.encoders.recipe import ROUTES, EncoderRecipe, route_recipe

__all__ = ["compress_encoder", "route_recipe", "EncoderRecipe", "ROUTES", "EncoderResult", "load_encoder", "embed"]
