"""Progress for long work, on stderr: a live bar on a terminal, plain timestamped lines in a log.

A log (stderr not a terminal) gets a line when work starts, one every `LOG_SECONDS` while it runs (also when
nothing advances, so a long step shows life) and one when it ends; lines are whole and never end in padding.
`labelled("candidate 2/6 (int8)")` prefixes every line and bar inside it, so interleaved work says whose it is.
`detail` lines are written only with `--verbose` (`verbosity.py`).
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
import time
from datetime import datetime

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from edgecompress.core.verbosity import is_verbose

LOG_SECONDS = 10.0  # in a log, a progress line at least this often while work runs

_label: contextvars.ContextVar[str] = contextvars.ContextVar("progress_label", default="")


class _Console(Console):
    """rich's Console; `log` in a log file is one plain `[HH:MM:SS] message` line (rich pads it to the width)."""

    def log(self, *objects, **kwargs) -> None:
        prefix = _label.get()
        objects = (f"{prefix}: {objects[0]}", *objects[1:]) if prefix and objects else objects
        if self.is_terminal:
            kwargs["_stack_offset"] = kwargs.get("_stack_offset", 1) + 1
            super().log(*objects, **kwargs)
        else:
            self.print(f"[{datetime.now():%H:%M:%S}]", *objects, soft_wrap=True, highlight=False)


console = _Console(stderr=True, log_path=False)


def detail(message: str) -> None:
    """A line of detail (what a stage set and measured), logged like progress when verbose, else not at all."""
    if is_verbose():
        console.log(message)


@contextlib.contextmanager
def labelled(label: str):
    """Prefix every progress line and log message inside the block with `label` (e.g. the fit candidate)."""
    token = _label.set(f"{_label.get()}: {label}" if _label.get() else label)
    try:
        yield
    finally:
        _label.reset(token)


def progress_bar(log_seconds: float = LOG_SECONDS, clock=time.monotonic):
    """A progress display: a live bar on a terminal, `LogProgress` lines otherwise; both on stderr.

    >>> with progress_bar() as bar:  # doctest: +SKIP
    ...     job = bar.add_task("train", total=40, status="")
    ...     bar.update(job, advance=1, status="loss 0.31")
    """
    if not console.is_terminal:
        return LogProgress(console, log_seconds, clock)
    return _LabelledProgress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


class _LabelledProgress(Progress):
    def add_task(self, description: str, *args, **kwargs):
        return super().add_task(_prefixed(description), *args, **kwargs)


class LogProgress:
    """The part of rich's Progress API that edgecompress uses, written as lines for a log.

    Lines look like `[12:01:07] fit 3/6 int8: 4,231 B, drop +0.20 (0:01:23)`: description, count, status,
    elapsed time. A background thread writes the current state every `log_seconds` while the block runs.
    """

    def __init__(self, out: Console, log_seconds: float = LOG_SECONDS, clock=time.monotonic):
        self.out, self.log_seconds, self.clock = out, log_seconds, clock
        self.tasks: dict[int, dict] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> LogProgress:
        if self.log_seconds > 0:
            self._thread = threading.Thread(target=self._heartbeat, name="edgecompress-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def add_task(self, description: str, total: float | None = None, completed: float = 0, **fields) -> int:
        with self._lock:
            task_id = len(self.tasks)
            now = self.clock()
            self.tasks[task_id] = {"description": _prefixed(description), "total": total, "completed": completed,
                                   "status": fields.get("status", ""), "start": now, "shown": now}
            self._write(self.tasks[task_id])
        return task_id

    def update(self, task_id: int, *, advance: float | None = None, completed: float | None = None,
               total: float | None = None, status: str | None = None, description: str | None = None, **_) -> None:
        with self._lock:
            task = self.tasks[task_id]
            if total is not None:
                task["total"] = total
            if completed is not None:
                task["completed"] = completed
            if advance is not None:
                task["completed"] += advance
            if status is not None:
                task["status"] = status
            if description is not None:
                task["description"] = _prefixed(description)
            finished = task["total"] is not None and task["completed"] >= task["total"]
            if finished or self.clock() - task["shown"] >= self.log_seconds:
                self._write(task)

    def advance(self, task_id: int, advance: float = 1) -> None:
        self.update(task_id, advance=advance)

    def _heartbeat(self) -> None:
        while not self._stop.wait(min(1.0, self.log_seconds)):
            with self._lock:
                for task in self.tasks.values():
                    unfinished = task["total"] is None or task["completed"] < task["total"]
                    if unfinished and self.clock() - task["shown"] >= self.log_seconds:
                        self._write(task)

    def _write(self, task: dict) -> None:
        task["shown"] = now = self.clock()
        count = f"{task['completed']:g}/{task['total']:g}" if task["total"] is not None else f"{task['completed']:g}"
        elapsed = int(now - task["start"])
        status = f" {task['status']}" if task["status"] else ""
        line = f"[{datetime.now():%H:%M:%S}] {task['description']} {count}{status} ({elapsed // 3600}:{elapsed // 60 % 60:02d}:{elapsed % 60:02d})"
        self.out.print(line, soft_wrap=True, markup=False, highlight=False)


def _prefixed(description: str) -> str:
    return f"{_label.get()}: {description}" if _label.get() else description
