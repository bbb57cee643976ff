"""``python -m lstm_cli`` and the ``lstm-demo`` script.

The command line (typer, rich) is imported inside ``main``, where a Ctrl-C in
the first few hundred milliseconds, while it is still importing, ends as any
other Ctrl-C does (one line, exit 130) instead of with a traceback; so does one
that arrives while the error boundary itself is printing. This module imports
nothing else, so the window before that is as short as it can be.
"""

import sys


def main() -> None:
    try:
        from lstm_cli.cli import app

        app()
    except KeyboardInterrupt:
        _interrupted()


def _interrupted() -> None:
    import os
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the goodbye
    try:
        sys.stderr.write("lstm-demo: interrupted\n")
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):
        pass
    os._exit(130)


if __name__ == "__main__":
    main()
