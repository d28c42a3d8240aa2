"""Low-rank factorization: replace a weight matrix by the product of two thin ones."""

from edgecompress.techniques.lowrank.factorize import factorize, factorize_linears

__all__ = ["factorize", "factorize_linears"]
