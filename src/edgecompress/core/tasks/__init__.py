"""Tasks: a model's data, loss and metric, built in or the user's own.

The names load on first use (`core/lazy.py`): the registry's names (`registry.py`) are read without torch.
"""

from edgecompress.core.lazy import lazy_exports

__all__ = ["Metric", "Task"]
__getattr__, __dir__ = lazy_exports(__name__, {"Metric": "edgecompress.core.tasks.task", "Task": "edgecompress.core.tasks.task"})
