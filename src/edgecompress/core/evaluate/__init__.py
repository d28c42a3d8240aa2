"""Scoring a model, torch or ONNX, on a task's evaluation data with the task's metric."""

from edgecompress.core.evaluate.scoring import Score, evaluate_onnx, score_onnx, score_torch

__all__ = ["Score", "evaluate_onnx", "score_onnx", "score_torch"]
