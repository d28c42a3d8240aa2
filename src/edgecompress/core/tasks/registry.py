"""Built-in task names, and loading a user's task from module:function.

The names are strings ("module:function", imported when the task is built): recipes are checked against
them without torch or scikit-learn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgecompress.core.errors import UserError
from edgecompress.core.lazy import imported

if TYPE_CHECKING:
    from edgecompress.core.tasks.task import Task

BUILTIN_TASKS: dict[str, str] = {"digits": "edgecompress.core.tasks.digits:digits_task"}  # name -> fn(seed) -> Task


def load_task(spec: str, seed: int = 0) -> Task:
    """A built-in task (called with the seed) or `module:function` returning an `edgecompress.Task`."""
    if spec in BUILTIN_TASKS:
        return imported(BUILTIN_TASKS[spec])(seed)
    if ":" not in spec:
        raise UserError(f"task: unknown task {spec!r}; use a built-in ({', '.join(BUILTIN_TASKS)}) or module:function")
    from edgecompress.core.models.loading import call_factory, import_attribute
    from edgecompress.core.tasks.task import Task

    task = call_factory(import_attribute(spec, field="task"), spec, "task")
    if not isinstance(task, Task):
        raise UserError(f"task: {spec} returned {type(task).__name__}, not an edgecompress.Task")
    return task
