"""How much is shown besides results. Normally the libraries' own logs and warnings are silenced where we know
they are noise to a user (ONNX Runtime's, the ONNX exporter's, onnx_ir's, Torch-Pruning's, torch's about
sparse tensors in beta); `--verbose` shows them, and a detail line after every stage (`progress.detail`).

The setting is the environment variable EDGECOMPRESS_VERBOSE (1: on), so the worker processes of `--jobs`
and Ray inherit it with the rest of the environment.

>>> with quiet_libraries(loggers=("onnx_ir",), warnings=(".*Sparse CSR tensor support is in beta",)):  # doctest: +SKIP
...     csr = weight.to_sparse_csr()
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings as python_warnings
from typing import Iterator

VERBOSE_ENV = "EDGECOMPRESS_VERBOSE"


def is_verbose() -> bool:
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0")


@contextlib.contextmanager
def verbose(on: bool = True) -> Iterator[None]:
    """Verbose output inside the block (the command line's `--verbose`), for this process and its workers."""
    was = os.environ.get(VERBOSE_ENV)
    os.environ[VERBOSE_ENV] = "1" if on else "0"
    try:
        yield
    finally:
        if was is None:
            os.environ.pop(VERBOSE_ENV, None)
        else:
            os.environ[VERBOSE_ENV] = was


@contextlib.contextmanager
def quiet_libraries(loggers: tuple[str, ...] = (), warnings: tuple[str, ...] = (), all_warnings: bool = False,
                    stdout: bool = False, stderr: bool = False) -> Iterator[None]:
    """Silence a library while the block runs, unless verbose: `loggers` (by name; "" is the root logger) below
    ERROR, the warnings whose message matches one of `warnings` (regular expressions matched at its start, as
    `warnings.filterwarnings` does; every warning with `all_warnings`), and what it prints on stdout or stderr."""
    if is_verbose():
        yield
        return
    chosen = [logging.getLogger(name) if name else logging.getLogger() for name in loggers]
    levels = [logger.level for logger in chosen]
    for logger in chosen:
        logger.setLevel(logging.ERROR)
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(python_warnings.catch_warnings())
            if all_warnings:
                python_warnings.simplefilter("ignore")
            for message in warnings:
                python_warnings.filterwarnings("ignore", message=message)
            if stdout:
                stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
            if stderr:
                stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
            yield
    finally:
        for logger, level in zip(chosen, levels):
            logger.setLevel(level)


def ort_log_severity() -> int:
    """ONNX Runtime's log level for our sessions: errors only (3), or warnings too (2) when verbose."""
    return 2 if is_verbose() else 3
