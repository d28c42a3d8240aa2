"""The machine a number was measured on: Python, package versions and the CPU class (which decides what
int8 computes here, see targets.py). Every metrics.json carries it next to its numbers."""

from __future__ import annotations

import platform
from importlib import metadata

from edgecompress.runtime.targets import host_cpu


def environment() -> dict:
    versions = {}
    for package in ("edgecompress", "torch", "onnxruntime", "onnx", "torch-pruning"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    host = host_cpu()
    # cpu_class decides what int8 computes here (runtime/targets.py): every number is this class's
    return {
        "python": platform.python_version(), "machine": platform.machine(), "cpu": host.model or "unknown",
        "cpu_class": host.cpu_class, "cpu_int8_flags": list(host.flags), **versions,
    }
