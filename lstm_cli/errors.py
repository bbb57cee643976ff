"""One error family for the whole package.

Domain code raises these; only the CLI turns them into one line on stderr and
an exit code (bad input: 2, a run that failed: 1).
"""


class LstmDemoError(Exception):
    """Base of every error this package raises on purpose."""

    exit_code = 2


class BadInput(LstmDemoError):
    """The user asked for something that does not exist or is out of range."""

    exit_code = 2


class RunFailed(LstmDemoError):
    """A run started but did not finish well (diverged, crashed)."""

    exit_code = 1


class Interrupted(LstmDemoError):
    """The user pressed Ctrl-C during a run; what was done so far is recorded."""

    exit_code = 130
