"""Rendering: rich tables for people, JSON / JSONL / CSV for programs.

The only package that imports rich. Machine formats are written to stdout
with the standard library alone (no wrapping, no colour codes); everything
meant for people besides the result (progress, notes, warnings) goes to stderr.

Non-finite floats are written as "inf", "-inf" and "nan" (see ``lstm_cli.plain``).
"""

from __future__ import annotations

import sys
from typing import TextIO



def unicode_ok(stream: TextIO | None = None) -> bool:
    """Whether ``stream`` (stdout) can show the block characters of the bars; a terminal in the C
    locale or with PYTHONIOENCODING=ascii cannot, and gets ASCII bars instead."""
    encoding = getattr(stream or sys.stdout, "encoding", None) or "ascii"
    try:
        "█▏·".encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def console(stderr: bool = False):
    """A rich Console for stdout (results) or stderr (progress, notes); honours NO_COLOR."""
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            """rich's hook for a reader that went away (``| head``): rich would exit 1; the
            command line's boundary decides instead (exit 0, silently)."""
            self.quiet = True
            raise BrokenPipeError

    return _Console(stderr=stderr, highlight=False, width=_width_when_columns_is_zero())


def _width_when_columns_is_zero() -> int | None:
    """COLUMNS=0 (or 00) would make rich lay everything out in no columns at all, and print
    nothing: the terminal's width (or 80) instead, as if COLUMNS were unset. None otherwise: rich
    reads COLUMNS and the terminal itself."""
    import os
    import shutil

    columns = os.environ.get("COLUMNS", "").strip()
    if not (columns.isdigit() and int(columns) == 0):
        return None
    return shutil.get_terminal_size((80, 24)).columns or 80


def natural_width(console, renderable) -> int:
    """The width ``renderable`` takes when nothing limits it (Measurement.get clamps to the width given)."""
    from rich.measure import Measurement

    return Measurement.get(console, console.options.update_width(10_000), renderable).maximum


def widen_unless_terminal(console, renderable) -> bool:
    """Lay a stdout ``console`` out as wide as ``renderable`` needs when stdout is a file or a pipe and
    COLUMNS is unset (rich would assume 80), so a saved table keeps every column and every digit; a
    terminal or COLUMNS keeps its width, and so does a console writing elsewhere. Returns whether it
    widened (``renderable`` then fits)."""
    import os
    import sys

    if console.file is sys.stdout and not os.environ.get("COLUMNS") and not sys.stdout.isatty():
        console.width = max(console.width, natural_width(console, renderable))
        return True
    return False
