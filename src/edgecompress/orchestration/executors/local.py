"""Where the trials of a sweep run: in this process, in a pool of local worker processes, or on Ray.

A trial is a pure function `fn(shared, trial)`: `shared` (the trained baseline, the task, the settings) is sent
once per worker, `trial` is a small picklable description of one point. Executors yield `(trial, result)` in
the order trials finish; callers checkpoint each result as it arrives and put results back in a fixed order, so
a table never depends on which worker was faster. Every trial runs on one torch thread in every executor: the
arithmetic (and so every number) is the same whichever executor ran it, and two workers on a 2-core machine
do not fight over cores.

>>> with make_executor(jobs=2).open({"offset": 1}) as runner:  # doctest: +SKIP
...     results = dict(runner.run(add_offset, [1, 2, 3]))
"""

from __future__ import annotations

import multiprocessing
import pickle
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator, Protocol

import torch

from edgecompress.core.errors import UserError

TrialFn = Callable[[Any, Any], Any]


class Runner(Protocol):
    def run(self, fn: TrialFn, trials: Iterable[Any]) -> Iterator[tuple[Any, Any]]:
        """Yield `(trial, fn(shared, trial))` for every trial, in the order they finish."""


class Executor(Protocol):
    name: str

    def open(self, shared: Any) -> Any:
        """A context manager yielding a `Runner` whose workers hold `shared`."""


def run_trial(fn: TrialFn, shared: Any, trial: Any) -> Any:
    """Run one trial on one torch thread (restored afterwards when it runs in the caller's process)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fn(shared, trial)
    finally:
        torch.set_num_threads(threads)


class LocalExecutor:
    """Trials one after another in this process (`--jobs 1`): no start-up cost, nothing to pickle."""

    name = "local"
    jobs = 1

    @contextmanager
    def open(self, shared: Any) -> Iterator[Runner]:
        yield _InProcess(shared)


class _InProcess:
    def __init__(self, shared: Any):
        self.shared = shared

    def run(self, fn: TrialFn, trials: Iterable[Any]) -> Iterator[tuple[Any, Any]]:
        for trial in trials:
            yield trial, run_trial(fn, self.shared, trial)


class ProcessExecutor:
    """Trials in `jobs` worker processes on this machine (`--jobs N`).

    Workers are spawned, not forked: a fork copies torch's OpenMP pool and the progress display's locks in
    whatever state they are, which can hang the child. The shared data is pickled once here and unpickled once
    per worker; it never comes from a file, so this is not the untrusted unpickling the project forbids.
    """

    name = "local"

    def __init__(self, jobs: int):
        self.jobs = jobs

    @contextmanager
    def open(self, shared: Any) -> Iterator[Runner]:
        try:
            payload = pickle.dumps(shared)
        except (pickle.PicklingError, AttributeError, TypeError) as error:
            raise UserError(f"--jobs: the model or task cannot be sent to worker processes ({error}); "
                            "define them at module level (no lambdas) or use --jobs 1") from None
        context = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(self.jobs, mp_context=context, initializer=_start_worker, initargs=(payload,))
        try:
            yield _Pool(pool)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


class _Pool:
    def __init__(self, pool: ProcessPoolExecutor):
        self.pool = pool

    def run(self, fn: TrialFn, trials: Iterable[Any]) -> Iterator[tuple[Any, Any]]:
        pending = {self.pool.submit(_worker_trial, fn, trial): trial for trial in trials}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield pending.pop(future), future.result()


_SHARED: Any = None


def _start_worker(payload: bytes) -> None:
    global _SHARED
    quiet_worker()
    _SHARED = pickle.loads(payload)


def quiet_worker() -> None:
    """One torch thread, and no progress bars drawn over the driver's (it reports progress as trials finish)."""
    from edgecompress.core import progress

    torch.set_num_threads(1)
    progress.console.quiet = True


def _worker_trial(fn: TrialFn, trial: Any) -> Any:
    return run_trial(fn, _SHARED, trial)
