"""The untrusted-file half of the nightly fuzzing run (`make fuzz`, and part of `make bench`): every property
test marked `fuzz` in tests/robustness (.ecz, safetensors and ONNX headers, folders) at FUZZ_SCALE times its CI
budget, then the crafted .ecz files of issue 21 with the peak memory of the process that refuses them. The
command-line half is benchmarks/fuzz.py. A failure stops the benchmarks: a fuzzing run that found something
must not look like a number."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FUZZ_SCALE = 6  # x the CI budget of each property test (fuzz_budget.py)
STATISTICS = r"(tests/robustness/\S+?)::(\w+):\s*\n(?:.*\n)*?\s+- (\d+) passing, (\d+) failing"  # hypothesis' own summary
CRAFTED = "tests/robustness/test_packed_file_limits.py::test_crafted_packed_files_are_refused_in_bounded_memory"


def _pytest(*args: str, scale: float = 1.0) -> tuple[str, float]:
    env = {**os.environ, "EDGECOMPRESS_FUZZ_SCALE": str(scale)}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "ignore", *args],
                          capture_output=True, text=True, env=env, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"fuzzing found a failure (pytest {' '.join(args)}):\n{done.stdout[-6000:]}\n{done.stderr[-2000:]}")
    return done.stdout, time.perf_counter() - start


def run() -> dict:
    load = os.getloadavg()[0]  # the machine may be shared: the time below is only comparable at the same load
    output, seconds = _pytest("-m", "fuzz", "--hypothesis-show-statistics", "tests/robustness", scale=FUZZ_SCALE)
    tests = [{"file": file, "test": test, "passing": int(passing), "failing": int(failing)}
             for file, test, passing, failing in re.findall(STATISTICS, output)]
    crafted_output, crafted_seconds = _pytest("-s", CRAFTED)
    crafted = [{"name": m[0], "bytes": int(m[1].replace(",", "")), "peak_rss_mb": int(m[2])}
               for m in re.findall(r"(\w+): ([\d,]+) bytes, refused at peak RSS (\d+) MB", crafted_output)]
    return {"scale": FUZZ_SCALE, "tests": tests, "seconds": seconds, "load": load, "crafted": crafted,
            "crafted_seconds": crafted_seconds}


def markdown(result: dict) -> str:
    total = sum(t["passing"] for t in result["tests"])
    rows = "\n".join(f"| `{t['test']}` ({Path(t['file']).name}) | {t['passing']:,} | {t['failing']} |" for t in result["tests"])
    crafted = "\n".join(f"| {c['name'].replace('_', ' ').replace(' gib', ' GiB')} | {c['bytes']:,} B | {c['peak_rss_mb']} MB |"
                         for c in result["crafted"])
    return f"""## Untrusted input: nightly fuzzing and crafted files

Every untrusted-file property test of `tests/robustness` (marker `fuzz`) at {result['scale']}x its CI budget (`EDGECOMPRESS_FUZZ_SCALE={result['scale']}`,
`make fuzz`): each generated case must load or be refused with one line (exit 2), run no code from a file,
read nothing outside a model's folder and write nothing outside the output path. {total:,} cases, 0 failures,
{result['seconds']:.0f} s on this machine at a load average of {result['load']:.1f} (CI runs the same tests at 1x).

| property test | cases | failing |
|---|---|---|
{rows}

The hostile `.ecz` files of issue 21, unpacked by the CLI in a child process whose peak RSS is measured
(importing edgecompress and torch is most of it); each is refused with one line, nothing written
({result['crafted_seconds']:.0f} s). The reader before the limits took 23.9, 2.5 and 4.5 GB on them.

| crafted file | size | peak RSS of the refusing process |
|---|---|---|
{crafted}"""
