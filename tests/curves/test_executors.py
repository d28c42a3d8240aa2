import os

import pytest
import torch

from edgecompress.core.errors import UserError
from edgecompress.orchestration.executors import LocalExecutor, ProcessExecutor, make_executor


def _trial(shared: dict, trial: int) -> tuple[int, int, int, int]:
    return trial + shared["offset"], torch.get_num_threads(), os.getpid(), id(shared)


def test_worker_processes_run_every_trial_on_one_thread_with_the_shared_data_sent_once(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # the suite's 1 (tests/conftest.py) would hide a worker left on more
    with ProcessExecutor(2).open({"offset": 100}) as runner:
        results = dict(runner.run(_trial, range(6)))
    assert {t: r[0] for t, r in results.items()} == {t: t + 100 for t in range(6)}
    assert {r[1] for r in results.values()} == {1}
    workers = {r[2] for r in results.values()}
    assert os.getpid() not in workers and 1 <= len(workers) <= 2
    for pid in workers:  # each worker holds one copy of the shared data for all its trials
        assert len({r[3] for r in results.values() if r[2] == pid}) == 1


def test_in_process_trials_use_one_thread_and_give_it_back():
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # not the suite's 1 (tests/conftest.py): giving 1 back would prove nothing
    try:
        with LocalExecutor().open({"offset": 1}) as runner:
            assert [(t, r[:2]) for t, r in runner.run(_trial, [1, 2])] == [(1, (2, 1)), (2, (3, 1))]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)


def test_data_that_cannot_reach_workers_is_one_clear_line():
    with pytest.raises(UserError, match="--jobs: the model or task cannot be sent to worker processes"):
        with ProcessExecutor(2).open({"factory": lambda width: width}):
            pass


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"jobs": 0}, "--jobs: must be at least 1"),
        ({"executor": "dask"}, "--executor: unknown executor 'dask'; allowed: local, ray"),
        ({"ray_address": "ray://head:10001"}, "--ray-address: only used with --executor ray"),
    ],
)
def test_bad_executor_settings(kwargs, message):
    with pytest.raises(UserError, match=message):
        make_executor(**kwargs)
