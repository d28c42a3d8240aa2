"""`python -m benchmarks`: run every benchmark and rewrite BENCHMARKS.md (atomically)."""

from __future__ import annotations

import datetime
import os
import platform
from pathlib import Path

from benchmarks import alternatives, block_sparse, curves, demo_pipeline, minilm, pruning, quantization
from edgecompress.files import atomic_write_text
from edgecompress.report.metrics import environment

OUTPUT = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"


def machine_section() -> str:
    env = environment()
    flags = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            cpu_flags = next(line for line in info if line.startswith("flags")).split(":", 1)[1].split()
        flags = ", ".join(f for f in ("avx2", "avx512f", "avx512_vnni", "amx_tile") if f in cpu_flags)
    except (OSError, StopIteration):
        pass
    versions = ", ".join(f"{k} {v}" for k, v in env.items() if k not in ("cpu", "machine", "python") and v)
    return (
        f"Machine: {env['cpu']} ({platform.machine()}, {os.cpu_count()} cores; {flags or 'no AVX flags read'}); "
        f"Python {env['python']}; {versions}.\n"
        f"Run on {datetime.date.today().isoformat()} with `make bench` (`python -m benchmarks`)."
    )


def main() -> None:
    sections = [module.markdown(module.run()) for module in (demo_pipeline, alternatives, pruning, curves, quantization, block_sparse, minilm)]
    text = "# Benchmarks\n\n" + machine_section() + "\n\n" + "\n\n".join(sections) + "\n"
    atomic_write_text(OUTPUT, text)
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
