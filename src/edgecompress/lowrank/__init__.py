"""Low-rank factorization: replace a weight matrix by the product of two thin ones."""

from edgecompress.lowrank.factorize import factorize
from edgecompress.lowrank.svd import factorize_linears

__all__ = ["factorize", "factorize_linears"]
