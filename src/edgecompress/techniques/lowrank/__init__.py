"""Low-rank factorization: replace a weight matrix by the product of two thin ones (`factorize.py`).

Only the stage config is named here: importing it must not import torch (the recipe schema is built from it).
"""

from edgecompress.techniques.lowrank.config import Factorize

__all__ = ["Factorize"]
