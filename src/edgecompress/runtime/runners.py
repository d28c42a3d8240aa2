"""Where an ONNX model runs: on this machine, or on an emulated CPU of another class.

Both run the same standalone worker (`ort_worker.py`): in-process here, in a subprocess under qemu-user
there. qemu 7.2's TCG emulates AVX2 but not VNNI, so from any x86 host `qemu-x86_64 -cpu Haswell` reaches
ONNX Runtime's AVX2 kernels; nothing reaches the VNNI ones but a VNNI machine. Emulated time is not a latency:
nothing here is timed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from edgecompress.core.errors import RunFailure, UserError
from edgecompress.runtime import ort_worker
from edgecompress.runtime.targets import host_cpu

Batch = Mapping[str, np.ndarray]
Runner = Callable[[Path, list[Batch]], list[dict[str, np.ndarray]]]  # model, batches -> every output per batch
# qemu's CPU model per class: Haswell is the first Intel core with AVX2, and has no VNNI; the Cortex-A53 has
# no dot-product instructions, so ORT takes its NEON kernels, the ones that pair products in 16 bits
QEMU_X86_CPU = "Haswell"
QEMU_ARM64_CPU = "cortex-a53"
# arm64 emulation needs an arm64 Python with numpy and onnxruntime: `make emulators` builds one there
EMULATION_DIR_ENV = "EDGECOMPRESS_EMULATION_DIR"


def run_on_host(model: Path, batches: list[Batch]) -> list[dict[str, np.ndarray]]:
    """Run `model` on each batch in this process, one thread, as every measurement here runs."""
    with tempfile.TemporaryDirectory(prefix="edgecompress-run-") as work:
        inputs, outputs = _write_inputs(batches, Path(work)), Path(work) / "outputs.npz"
        ort_worker.run(str(model), str(inputs), str(outputs))
        return _read_outputs(outputs, len(batches))


def runner_for(cpu_class: str):
    """A runner executing on `cpu_class`: the host itself if it is of that class, else an emulator."""
    if host_cpu().cpu_class == cpu_class:
        return run_on_host
    if cpu_class == "x86-avx2" and host_cpu().machine in ("x86_64", "amd64"):
        if shutil.which("qemu-x86_64") is None:
            raise UserError("--target: qemu-x86_64 is not installed; `make emulators` installs qemu-user (Debian)")
        return EmulatedRunner(["qemu-x86_64", "-cpu", QEMU_X86_CPU, sys.executable], cpu_class)
    if cpu_class == "arm64":
        python = emulation_dir() / "arm64" / "bin" / "python-arm64"
        if not python.is_file():
            raise UserError(f"--target: no arm64 Python at {python}; `make emulators` builds one (or set {EMULATION_DIR_ENV})")
        return EmulatedRunner([str(python), "--cpu", QEMU_ARM64_CPU], cpu_class)
    raise UserError(
        f"--target: cannot run {cpu_class} code on this {host_cpu().cpu_class} machine: qemu emulates AVX2 "
        f"but not VNNI; verify on a {cpu_class} machine"
    )


def emulation_dir() -> Path:
    """Where `make emulators` keeps the emulated CPUs' userlands (default ~/.cache/edgecompress/emulation)."""
    return Path(os.environ.get(EMULATION_DIR_ENV, Path.home() / ".cache" / "edgecompress" / "emulation"))


class EmulatedRunner:
    """Runs the worker under qemu-user in a subprocess: same model, same inputs, another CPU's kernels.

    `command` is everything before the worker script: the emulator, its CPU model and the Python to run.
    """

    def __init__(self, command: list[str], cpu_class: str):
        self.command, self.cpu_class = command, cpu_class
        self.description = f"emulated: {' '.join(Path(c).name if '/' in c else c for c in command)}"

    def __call__(self, model: Path, batches: list[Batch]) -> list[dict[str, np.ndarray]]:
        with tempfile.TemporaryDirectory(prefix="edgecompress-emulated-") as work:
            inputs, outputs = _write_inputs(batches, Path(work)), Path(work) / "outputs.npz"
            command = [*self.command, ort_worker.__file__, str(model), str(inputs), str(outputs)]
            done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
            if done.returncode != 0 or not outputs.exists():
                errors = [line for line in done.stderr.splitlines() if line.strip() and "TCG doesn't support" not in line]
                raise RunFailure(f"verify: the {self.cpu_class} emulator failed: {errors[-1] if errors else done.returncode}")
            return _read_outputs(outputs, len(batches))


def _write_inputs(batches: list[Batch], folder: Path) -> Path:
    path = folder / "inputs.npz"
    np.savez(path, **{f"{number}/{name}": np.ascontiguousarray(value) for number, batch in enumerate(batches) for name, value in batch.items()})
    return path


def _read_outputs(path: Path, count: int) -> list[dict[str, np.ndarray]]:
    results: list[dict[str, np.ndarray]] = [{} for _ in range(count)]
    with np.load(path, allow_pickle=False) as saved:
        for key in saved.files:
            number, name = key.split("/", 1)
            results[int(number)][name] = saved[key]
    return results
