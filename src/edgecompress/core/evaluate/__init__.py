"""Scoring a model, torch or ONNX, on a task's evaluation data with the task's metric."""

from edgecompress.core.evaluate.scoring import score_onnx, score_torch

__all__ = ["score_onnx", "score_torch"]
