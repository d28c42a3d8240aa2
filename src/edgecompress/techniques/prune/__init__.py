"""Pruning: remove weights so the model really gets smaller and faster."""
