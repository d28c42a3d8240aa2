"""Where trials run: in this process, in a pool of local processes (`--jobs N`), or on a Ray cluster
(`--executor ray`). Sweeps, sensitivity and fit hand their trials to an Executor and get the same results
from each."""

from __future__ import annotations

from edgecompress.core.errors import UserError
from edgecompress.orchestration.executors.local import Executor, LocalExecutor, ProcessExecutor

__all__ = ["EXECUTORS", "Executor", "LocalExecutor", "ProcessExecutor", "make_executor"]


EXECUTORS = ("local", "ray")


def make_executor(executor: str | Executor = "local", jobs: int = 1, ray_address: str | None = None) -> Executor:
    """The executor for `--executor`/`--jobs`/`--ray-address`, validated. `jobs` > 1 builds a local process
    pool; an Executor object is used as is, and `jobs` with it must agree with it (or be left at 1).

    >>> make_executor(jobs=2).jobs
    2
    """
    if jobs < 1:
        raise UserError(f"--jobs: must be at least 1, got {jobs}")
    if not isinstance(executor, str):
        if jobs != 1 and getattr(executor, "jobs", None) != jobs:
            raise UserError(f"--jobs: {jobs} disagrees with the executor given ({executor.name}, "
                            f"{getattr(executor, 'jobs', 'its own scheduling')}); give jobs or an executor, not both")
        return executor
    if executor not in EXECUTORS:
        raise UserError(f"--executor: unknown executor {executor!r}; allowed: {', '.join(EXECUTORS)}")
    if executor == "ray" and jobs != 1:
        raise UserError("--jobs: only used with --executor local; Ray runs as many trials at once as the cluster "
                        "has CPUs (set cpus_per_trial in the recipe's execution section)")
    if executor == "ray":
        from edgecompress.orchestration.executors.ray import RayExecutor  # ray is an optional extra

        return RayExecutor(address=ray_address)
    if ray_address is not None:
        raise UserError("--ray-address: only used with --executor ray")
    return LocalExecutor() if jobs == 1 else ProcessExecutor(jobs)
