"""The tiny random BERT fixture, for the FFN factorization tests."""

from tests.encoders.conftest import tiny_model_dir  # noqa: F401
