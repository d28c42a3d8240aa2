"""One trial runner for sweep points, sensitivity trials and fit candidates.

The caller says what runs (`fn(shared, trial)` on an Executor: in this process, a local pool or Ray) and what
to do with each result as it arrives (`finish`: store it in the TrialStore, return one status line per result
stored); the runner shows progress. Results arrive in the order trials finish; callers put them back in a
fixed order, so a table never depends on which worker was faster.

>>> with open_trials(make_executor(jobs=2), shared, "sweep", total=len(keys), completed=len(done)) as trials:  # doctest: +SKIP
...     trials.run(run_sweep_trial, missing, finish=lambda trial, points: [store_point(p) for p in points])
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator

from edgecompress.core.progress import progress_bar
from edgecompress.orchestration.executors import Executor
from edgecompress.orchestration.executors.local import Runner, TrialFn

Finish = Callable[[Any, Any], Iterable[str]]


class Trials:
    """The open executor and the progress line of one command (see `open_trials`)."""

    def __init__(self, runner: Runner, bar, job):
        self.runner, self.bar, self.job = runner, bar, job

    def run(self, fn: TrialFn, trials: Iterable[Any], finish: Finish) -> None:
        """Run every trial; hand each `(trial, result)` to `finish` as it arrives, one progress step per status."""
        for trial, result in self.runner.run(fn, trials):
            for status in finish(trial, result):
                self.bar.update(self.job, advance=1, status=status)

    def resize(self, total: int, completed: int) -> None:
        """More trials than first announced (a sweep's dense baselines, known only after its points)."""
        self.bar.update(self.job, total=total, completed=completed)


@contextmanager
def open_trials(executor: Executor, shared: Any, title: str, total: int, completed: int = 0) -> Iterator[Trials]:
    """The executor opened with `shared` on its workers, and a progress line `title` at `completed`/`total`."""
    with progress_bar() as bar, executor.open(shared) as runner:
        yield Trials(runner, bar, bar.add_task(title, total=total, completed=completed, status=""))
