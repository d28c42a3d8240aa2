"""One command per output directory: an OS lock that twelve racing processes never share, and that ends with
its process (kill -9 included), so no lock is ever stale."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from edgecompress.cli import main
from edgecompress.core.errors import UserError
from edgecompress.storage.files import atomic_write_text
from edgecompress.storage.rundir import owned_run_dir

PROCESSES = 12
TRIALS = 200


def _racer(root: str, start, attempted, holders, most, wins, refusals) -> None:
    """Each trial: all twelve try to own the trial's directory at once; an owner holds it until every process
    has tried (the second barrier), so owners at the same time are all counted, however short the race."""
    for trial in range(TRIALS):
        start.wait(timeout=120)  # timeouts guard a hang only
        try:
            with owned_run_dir(Path(root) / f"trial-{trial}", "run") as out:
                with holders.get_lock():
                    holders.value += 1
                attempted.wait(timeout=120)
                with most.get_lock():
                    most.value = max(most.value, holders.value)
                atomic_write_text(out / "owner.txt", str(os.getpid()))
                with holders.get_lock():
                    holders.value -= 1
            with wins.get_lock():
                wins.value += 1
        except UserError:
            with refusals.get_lock():
                refusals.value += 1
            attempted.wait(timeout=120)


def test_twelve_racing_processes_never_hold_one_directory_together(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout
    for trial in range(0, TRIALS, 2):  # half the trials start from the lock file of a killed run
        (tmp_path / f"trial-{trial}" / ".edgecompress").mkdir(parents=True)
        (tmp_path / f"trial-{trial}" / ".edgecompress" / "lock").write_text(dead)
    context = multiprocessing.get_context("fork")  # the children touch no torch: only files and locks
    start, attempted = context.Barrier(PROCESSES), context.Barrier(PROCESSES)
    holders, most, wins, refusals = (context.Value("i", 0) for _ in range(4))
    racers = [
        context.Process(target=_racer, args=(str(tmp_path), start, attempted, holders, most, wins, refusals))
        for _ in range(PROCESSES)
    ]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()
    assert [racer.exitcode for racer in racers] == [0] * PROCESSES
    assert most.value == 1, f"{most.value} processes held one directory at once"
    assert (wins.value, refusals.value) == (TRIALS, (PROCESSES - 1) * TRIALS)  # one owner per trial, the rest refused
    for trial in range(TRIALS):
        assert (tmp_path / f"trial-{trial}" / "owner.txt").is_file()


HOLDER = """
import sys
from edgecompress.storage.files import atomic_write_text
from edgecompress.storage.rundir import owned_run_dir
with owned_run_dir(sys.argv[1], "run") as out:
    atomic_write_text(out / "a.txt", "first")
    print("holding", flush=True)
    sys.stdin.readline()
"""


@pytest.fixture
def holder(tmp_path):
    """A process that owns tmp_path/out, having written a.txt there, until it is killed."""
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline() == "holding\n"
    yield out, process
    if process.poll() is None:
        process.kill()
    process.wait()


@pytest.mark.parametrize(
    "command",
    [
        ["inspect", "digits-cnn"],
        ["run", "examples/digits-tiny.yaml"],
    ],
)
def test_every_command_that_writes_a_directory_takes_the_lock(command, holder, capsys):
    out, process = holder
    before = sorted(p.name for p in out.iterdir())
    code = main([*command, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err == f"error: --out: {out} is in use by another edgecompress command; wait for it to finish or choose another directory\n"
    assert sorted(p.name for p in out.iterdir()) == before and process.poll() is None


def test_the_lock_ends_with_its_process_even_on_kill_9(holder):
    out, process = holder
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    with pytest.raises(UserError, match="holds an unfinished"):  # free at once; what is left is marked unfinished
        with owned_run_dir(out, "run"):
            pass
    with owned_run_dir(out, "run", resume=True) as owned:
        atomic_write_text(owned / "a.txt", "resumed")
    assert (out / "a.txt").read_text() == "resumed"
