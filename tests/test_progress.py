"""Progress in a log: a line at the start, at least every LOG_SECONDS, and at the end; whole, unpadded lines
that say whose work they are."""

from __future__ import annotations

import io
import re
import time

import pytest
from rich.console import Console

from edgecompress.core import progress
from edgecompress.core.progress import LogProgress, labelled

LINE = re.compile(r"^\[\d\d:\d\d:\d\d\] (.*) \((\d+):(\d\d):(\d\d)\)$")


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def _log() -> Console:
    return Console(file=io.StringIO(), force_terminal=False, width=80)


def _lines(console: Console) -> list[str]:
    return console.file.getvalue().splitlines()


def test_log_progress_writes_start_every_interval_and_end_with_elapsed_time():
    out, clock = _log(), FakeClock()
    with LogProgress(out, log_seconds=10, clock=clock) as bar:
        job = bar.add_task("baseline", total=40, status="")
        for epoch in range(1, 41):
            clock.now += 1.0  # one second per epoch
            bar.update(job, advance=1, status=f"loss {1 / epoch:.4f}")
    lines = _lines(out)
    assert [LINE.match(line).group(1) for line in lines] == [
        "baseline 0/40", "baseline 10/40 loss 0.1000", "baseline 20/40 loss 0.0500", "baseline 30/40 loss 0.0333",
        "baseline 40/40 loss 0.0250",
    ]
    assert LINE.match(lines[-1]).groups()[1:] == ("0", "00", "40")
    assert all(line == line.rstrip() for line in lines)


def test_a_long_step_without_updates_still_shows_life():
    out = _log()
    with LogProgress(out, log_seconds=0.05) as bar:
        bar.add_task("export", total=1, status="")
        deadline = time.monotonic() + 30
        while len(_lines(out)) < 3 and time.monotonic() < deadline:  # waits for two heartbeats, however loaded
            time.sleep(0.01)
    lines = _lines(out)
    assert len(lines) >= 3 and {LINE.match(line).group(1) for line in lines} == {"export 0/1"}


def test_a_long_value_is_never_cut_or_wrapped_in_a_log():
    out = _log()
    with LogProgress(out, log_seconds=0) as bar:
        job = bar.add_task("sweep " + "x" * 120, total=1, status="")
        bar.update(job, advance=1, status="unstructured 0.9 ft: 97.50")
    assert len(_lines(out)) == 2 and _lines(out)[1].startswith(f"[{_lines(out)[1][1:9]}] sweep {'x' * 120} 1/1 unstructured 0.9 ft: 97.50 (")


@pytest.fixture
def log_console(monkeypatch):
    console = progress._Console(file=io.StringIO(), force_terminal=False, width=80, log_path=False)
    monkeypatch.setattr(progress, "console", console)
    return console


def test_log_lines_in_a_file_are_plain_and_unpadded(log_console):
    log_console.log("stage 1/4 (prune): running")
    assert re.fullmatch(r"\[\d\d:\d\d:\d\d\] stage 1/4 \(prune\): running\n", log_console.file.getvalue())


def test_labelled_work_names_itself_on_every_line(log_console):
    with labelled("candidate 03 (int8)"):
        log_console.log("stage 1/1 (quantize): running")
        with progress.progress_bar(log_seconds=0) as bar:
            bar.add_task("finetune", total=2, status="")
    log_console.log("after")
    lines = [line[11:] for line in _lines(log_console)]
    assert lines[0] == "candidate 03 (int8): stage 1/1 (quantize): running"
    assert lines[1].startswith("candidate 03 (int8): finetune 0/2 (")
    assert lines[2] == "after"


def test_fit_candidates_label_their_progress(log_console, monkeypatch):
    from edgecompress.orchestration.pipeline import run as pipeline_run
    from edgecompress.orchestration.search.fit_trials import FitShared, FitTrial, run_fit_trial

    class Stop(Exception):
        pass

    def fake_compress(*args, **kwargs):
        progress.console.log("stage 1/2 (prune): running")
        raise Stop

    monkeypatch.setattr(pipeline_run, "compress", fake_compress)
    task = type("T", (), {"val_loader": None})()
    with pytest.raises(Stop):
        run_fit_trial(FitShared(None, task, 0, "packed"), FitTrial("candidates/03", "channels -50% + int8", ()))
    assert _lines(log_console)[0][11:] == "candidate 03 (channels -50% + int8): stage 1/2 (prune): running"
