"""Start a CLI process as a terminal starts a foreground job: Ctrl-C (SIGINT) at its default action.

A shell without job control (a script, `( make test & )`) starts background commands with SIGINT ignored, and
every process below inherits that: Python then installs no KeyboardInterrupt handler, the test's SIGINT does
nothing and the run finishes with exit 0. Found running the suite as such a job beside two busy processes.
"""

from __future__ import annotations

import signal


def sigint_as_in_a_terminal() -> None:
    """`preexec_fn` of a child that a test interrupts: SIGINT back to its default, whatever the suite inherited."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
