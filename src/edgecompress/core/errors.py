"""Errors a user can act on.

`UserError` marks bad input (exit code 2); the CLI prints its message as one line, never a traceback.
"""


class UserError(Exception):
    """Bad input: the message names the field, what was given, and how to fix it."""


class RunFailure(Exception):
    """A genuine runtime failure (exit code 1), reported as one line unless --debug."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (or its type name): what a one-line error can show."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
