"""Run `edgecompress ...` cases in child processes and measure each one's peak resident memory (RSS).

A helper process imports edgecompress once (~0.4 GB, most of it torch), then forks one child per case; the
child runs the CLI's `main` and exits with its exit code, and `os.wait4` gives that child's own peak RSS.
A forked child starts with its parent's pages mapped, so the number is what a fresh `edgecompress` process
would show. The child's address space is capped at 3 GiB, so that a regression fails the test (MemoryError,
exit 1) instead of taking the shared machine's memory.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass

ADDRESS_SPACE_CAP = 3 << 30
_HELPER = f"""
import json, os, resource, sys
from edgecompress.cli import main

results = []
for index, args in enumerate(json.loads(sys.argv[1])):
    err_path = os.path.join(sys.argv[2], f"stderr-{{index}}.txt")
    pid = os.fork()
    if pid == 0:
        os.dup2(os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 2)
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
        resource.setrlimit(resource.RLIMIT_AS, ({ADDRESS_SPACE_CAP}, {ADDRESS_SPACE_CAP}))
        code = 99
        try:
            code = main(args)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status, usage = os.wait4(pid, 0)
    with open(err_path) as err:
        results.append([os.waitstatus_to_exitcode(status), err.read(), usage.ru_maxrss * 1024])
print(json.dumps(results))
"""


@dataclass(frozen=True)
class Measured:
    returncode: int
    stderr: str
    peak_rss_bytes: int

    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("error: ")]


def run_measured(*cases: list) -> list[Measured]:
    """One Measured per argument list, in order."""
    with tempfile.TemporaryDirectory() as scratch:
        done = subprocess.run([sys.executable, "-c", _HELPER, json.dumps([[str(a) for a in c] for c in cases]), scratch],
                              capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return [Measured(*result) for result in json.loads(done.stdout.strip().splitlines()[-1])]
