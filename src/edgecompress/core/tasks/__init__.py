"""Tasks: a model's data, loss and metric, built in or the user's own."""

from edgecompress.core.tasks.task import Metric, Task

__all__ = ["Metric", "Task"]
