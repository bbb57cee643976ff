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
        from lstm_cli import process
        from lstm_cli.cli import app

        process.prepare_for(_only_the_named_command(app, sys.argv[1:]))
        app()
    except KeyboardInterrupt:
        _interrupted()
    except Exception as err:  # a Ctrl-C during an import that Python wrapped in its own error
        from lstm_cli.process import interrupted_inside

        if interrupted_inside(err):
            _interrupted()
        raise
    except SystemExit as stop:
        # interrupted (Ctrl-C) or terminated (SIGTERM), already said; a process that used
        # multiprocessing (a sweep) exits the ordinary way, so that its finalizers release the
        # pool's semaphores
        if stop.code in (130, 143) and "multiprocessing" not in sys.modules:
            _exit_as(stop.code)
        raise


def _only_the_named_command(app, argv: list[str]) -> str | None:
    """Build only what this process runs, and return the name of the command it runs (None: none).

    Typer turns every command's options into click's before it runs one (about 12 ms of
    ``--help``'s 80 and of ``gradients``' 220). The command that ``argv`` names alone; with none
    named (the top-level help, ``--version``, a misspelt command) each command as its name and
    help only, which is all that those print. Shell completion gets every command whole."""
    import os

    if any(key.endswith("_COMPLETE") for key in os.environ):
        return None
    first = next((arg for arg in argv if not arg.startswith("-")), None)
    named = [c for c in app.registered_commands if c.name == first]  # cli.py names every command
    app.registered_commands = named or [_help_only(c) for c in app.registered_commands]
    return first if named else None


def _help_only(command):
    """A registered command (Typer's CommandInfo) as its name and help, without its options."""
    return type(command)(name=command.name, cls=command.cls, help=command.help, short_help=command.short_help,
                         callback=lambda: None, hidden=command.hidden, deprecated=command.deprecated,
                         context_settings=command.context_settings)


def _exit_as(code: int) -> None:
    """Exit with ``code`` itself. A KeyboardInterrupt that passed through code run by the
    interpreter's own runner (and was caught here) leaves a flag that makes Python end the
    process by SIGINT, whatever code it was asked to exit with (seen as -2 instead of 143)."""
    import os

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    os._exit(code)


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
