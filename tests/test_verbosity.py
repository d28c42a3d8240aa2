"""--verbose: the libraries' logs and warnings we silence are heard, and each stage adds a detail line; without
it they stay silent. The setting travels in the environment, so worker processes inherit it."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings

from edgecompress.core import progress
from edgecompress.core.verbosity import VERBOSE_ENV, is_verbose, ort_log_severity, quiet_libraries, verbose


def _noisy_library() -> None:
    """A library that logs, warns and prints: what `quiet_libraries` is for."""
    logging.getLogger("noisy.library").warning("a library's own warning log")
    warnings.warn("Unwrapped parameters detected: noise", UserWarning, stacklevel=1)
    print("a library's progress on stdout")


def _heard(**quiet) -> list[str]:
    logger, records = logging.getLogger("noisy.library"), []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())
    logger.addHandler(handler)
    stdout = io.StringIO()
    try:
        with warnings.catch_warnings(record=True) as warned, contextlib.redirect_stdout(stdout):
            warnings.simplefilter("always")
            with quiet_libraries(**quiet):
                _noisy_library()
    finally:
        logger.removeHandler(handler)
    return records + [str(w.message) for w in warned] + stdout.getvalue().splitlines()


def test_libraries_are_silenced_by_default_and_heard_when_verbose():
    settings = {"loggers": ("noisy.library",), "warnings": ("Unwrapped parameters detected",), "stdout": True}
    assert _heard(**settings) == []
    assert _heard(loggers=("noisy.library",)) == ["Unwrapped parameters detected: noise", "a library's progress on stdout"]
    with verbose():
        assert _heard(**settings) == ["a library's own warning log", "Unwrapped parameters detected: noise",
                                      "a library's progress on stdout"]
    assert logging.getLogger("noisy.library").level == logging.NOTSET, "the logger's level is given back"


def test_verbose_is_set_for_the_block_and_its_worker_processes_then_restored():
    assert not is_verbose() and ort_log_severity() == 3  # ONNX Runtime: errors only
    with verbose():
        assert os.environ[VERBOSE_ENV] == "1" and is_verbose() and ort_log_severity() == 2  # and its warnings
    assert VERBOSE_ENV not in os.environ and not is_verbose()


def test_detail_lines_are_written_only_when_verbose(monkeypatch):
    console = progress._Console(file=io.StringIO(), force_terminal=False, width=80, log_path=False)
    monkeypatch.setattr(progress, "console", console)
    progress.detail("stage 1/2 (prune): 17,810 params")
    assert console.file.getvalue() == ""
    with verbose():
        progress.detail("stage 1/2 (prune): 17,810 params")
    assert console.file.getvalue().endswith("] stage 1/2 (prune): 17,810 params\n")
