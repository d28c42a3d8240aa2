"""Trials on Ray (`--executor ray`): a local Ray instance by default, or an existing cluster at `address`.

Ray does the scheduling, the shipping and the fault tolerance; we only say what a trial needs. The shared data
(trained baseline, task, settings) goes into Ray's object store once (`ray.put`) and every task receives a
reference to it, so it is not shipped with each task. Each trial is a task declaring its CPUs (and GPUs); a
worker that dies mid-trial has its task run again, up to `max_retries` times. Results come back (scores and
file bytes) to the driver, which checkpoints each as it arrives, so workers need no shared disk.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterable, Iterator

from edgecompress.core.errors import UserError
from edgecompress.orchestration.executors.local import Runner, TrialFn, quiet_worker, run_trial

INSTALL_HINT = "--executor ray: Ray is not installed; install it with: pip install 'edgecompress[ray]'"


def import_ray():
    """The `ray` module, or a one-line UserError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise UserError(INSTALL_HINT) from None
    return ray


class RayExecutor:
    """Run trials as Ray tasks.

    Without `address` (and no Ray already initialised in this process) a local Ray instance is started for the
    run and stopped after it; with one (e.g. "auto" or "ray://head:10001") the run joins that cluster.

    >>> sweep(model, task, "runs/sweep", executor=RayExecutor(address="auto"))  # doctest: +SKIP
    """

    name = "ray"

    def __init__(self, address: str | None = None, cpus_per_trial: float = 1, gpus_per_trial: float = 0, max_retries: int = 3):
        import_ray()
        self.address = address
        self.cpus_per_trial = cpus_per_trial
        self.gpus_per_trial = gpus_per_trial
        self.max_retries = max_retries

    @contextmanager
    def open(self, shared: Any) -> Iterator[Runner]:
        ray = import_ray()
        started = not ray.is_initialized()
        if started:
            try:
                ray.init(address=self.address, include_dashboard=False, log_to_driver=False)
            except (ConnectionError, RuntimeError, ValueError) as error:
                raise UserError(f"--ray-address: cannot connect to Ray at {self.address!r} ({str(error).splitlines()[0]}); "
                                "check the address, e.g. ray://head:10001, or omit it to start a local instance") from None
        try:
            remote = ray.remote(_ray_trial).options(
                num_cpus=self.cpus_per_trial, num_gpus=self.gpus_per_trial, max_retries=self.max_retries
            )
            yield _RayRunner(ray, remote, ray.put(shared))
        finally:
            if started:
                ray.shutdown()


class _RayRunner:
    def __init__(self, ray, remote, shared_ref):
        self.ray, self.remote, self.shared_ref = ray, remote, shared_ref

    def run(self, fn: TrialFn, trials: Iterable[Any]) -> Iterator[tuple[Any, Any]]:
        pending = {self.remote.remote(fn, self.shared_ref, trial): trial for trial in trials}
        try:
            while pending:
                done, _ = self.ray.wait(list(pending), num_returns=1)
                for ref in done:
                    yield pending.pop(ref), self.ray.get(ref)
        finally:
            for ref in pending:  # interrupted: do not leave trials running on the cluster
                self.ray.cancel(ref, force=True)


def _ray_trial(fn: TrialFn, shared: Any, trial: Any) -> Any:
    quiet_worker()
    return run_trial(fn, shared, trial)
