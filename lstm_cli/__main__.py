"""``python -m lstm_cli`` and the ``lstm-demo`` script.

The command line (typer, rich) is imported inside ``main``, where a Ctrl-C in
the first few hundred milliseconds, while it is still importing, ends as any
other Ctrl-C does (one line, exit 130) instead of with a traceback. This module
imports nothing else, so the window before that is as short as it can be.
"""

import sys


def main() -> None:
    try:
        from lstm_cli.cli import app
    except KeyboardInterrupt:
        sys.stderr.write("lstm-demo: interrupted\n")
        sys.exit(130)
    app()


if __name__ == "__main__":
    main()
