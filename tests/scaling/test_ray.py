"""Sweeps on a local Ray instance with 2 CPUs: the same table as the local executor, and a killed worker's
trial is retried. One Ray instance for the module (starting one takes seconds)."""

import os
import signal
from contextlib import contextmanager
from pathlib import Path

import pytest
import ray

import edgecompress
from edgecompress.cli import main
from edgecompress.orchestration.curves import sweep
from edgecompress.orchestration.executors.ray import RayExecutor

SETTINGS = dict(levels=(0.9,), methods=("unstructured",), finetune_epochs=1, tolerance=1.0)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def local_ray():
    # workers import this test module to run DieOnce: give them the repository on their path, and the
    # edgecompress this process imported (a checkout run with PYTHONPATH=src, not the one installed)
    code = Path(edgecompress.__file__).resolve().parents[1]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": f"{ROOT}{os.pathsep}{code}"}})
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def local_table(trained_cnn, digits, tmp_path_factory):
    out = tmp_path_factory.mktemp("local")
    sweep(trained_cnn, digits, out, **SETTINGS)
    return (out / "sweep.csv").read_text()


def test_ray_sweep_gives_the_same_table_as_the_local_executor(local_ray, local_table, trained_cnn, digits, tmp_path):
    result = sweep(trained_cnn, digits, tmp_path / "r", executor="ray", **SETTINGS)
    assert len(result.points) == 2
    assert (tmp_path / "r" / "sweep.csv").read_text() == local_table


class DieOnce:
    """The trial function, except that the first trial of `level` kills its worker process mid-trial."""

    def __init__(self, fn, marker: Path, level: float):
        self.fn, self.marker, self.level = fn, marker, level

    def __call__(self, shared, trial):
        if getattr(trial, "level", None) == self.level and not self.marker.exists():
            self.marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return self.fn(shared, trial)


class DyingWorkerExecutor(RayExecutor):
    """Ray, with the trial of level 0.9 killing its worker the first time it runs."""

    def __init__(self, marker: Path):
        super().__init__(max_retries=2)
        self.marker = marker

    @contextmanager
    def open(self, shared):
        with super().open(shared) as runner:
            yield _Dying(runner, self.marker)


class _Dying:
    def __init__(self, runner, marker):
        self.runner, self.marker = runner, marker

    def run(self, fn, trials):
        return self.runner.run(DieOnce(fn, self.marker, 0.9), trials)


def test_a_killed_worker_has_its_trial_retried_and_the_sweep_completes(local_ray, local_table, trained_cnn, digits, tmp_path):
    marker = tmp_path / "killed-pid"
    result = sweep(trained_cnn, digits, tmp_path / "k", executor=DyingWorkerExecutor(marker), **SETTINGS)
    assert marker.exists() and int(marker.read_text()) != os.getpid()  # a worker really died mid-trial
    assert len(result.points) == 2
    assert (tmp_path / "k" / "sweep.csv").read_text() == local_table


def test_without_ray_the_executor_says_how_to_install_it(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(__import__("sys").modules, "ray", None)  # as if Ray were not installed
    assert main(["sweep", "--executor", "ray", "--out", str(tmp_path / "s")]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == "error: --executor ray: Ray is not installed; install it with: pip install 'edgecompress[ray]'"


def test_fit_on_ray_chooses_like_the_local_executor(local_ray, trained_cnn, digits, tmp_path):
    import edgecompress as ec
    from edgecompress.orchestration.search.fit import fit

    candidates = [("int8", [ec.Quantize()]), ("channels-75%", [ec.Prune(pattern="channel", amount=0.75)])]
    local = fit(trained_cnn, digits, tmp_path / "l", max_bytes=30_000, size_of="onnx", candidates=candidates)
    on_ray = fit(trained_cnn, digits, tmp_path / "r", max_bytes=30_000, size_of="onnx", candidates=candidates, executor="ray")
    numbers = lambda result: [(c.label, c.size_bytes, c.score, c.drop, c.fits) for c in result.candidates]  # noqa: E731
    assert numbers(on_ray) == numbers(local) and on_ray.chosen.label == local.chosen.label == "channels-75%"
    assert (tmp_path / "r" / "candidates" / "02" / "final.onnx").read_bytes() == (tmp_path / "l" / "candidates" / "02" / "final.onnx").read_bytes()
