"""Rendering: rich tables for people, JSON / JSONL / CSV for programs.

Every table goes through ``render.table`` (one width rule, one look); every command that lists
rows picks its writer with ``write_rows`` from ``config.Format``.

The only package that imports rich. Machine formats are written to stdout
with the standard library alone (no wrapping, no colour codes); everything
meant for people besides the result (progress, notes, warnings) goes to stderr.

Non-finite floats are written as "inf", "-inf" and "nan" (see ``lstm_cli.plain``).
"""

from __future__ import annotations

import sys
from typing import Any, Callable, TextIO

from lstm_cli.plain import write_csv, write_json, write_jsonl



def write_rows(fmt, rows: list[dict], table: Callable[[], None], fields: list[str] | None = None,
               document: Any = None, lines: list | None = None) -> None:
    """The one dispatch from a ``config.Format`` to its writer: ``table()`` draws the table (through
    ``render.table``), csv writes ``rows`` (with ``fields`` as its header), json writes ``document``
    and jsonl ``lines`` (each the rows when None)."""
    writers = {"table": table, "json": lambda: write_json(rows if document is None else document),
               "jsonl": lambda: write_jsonl(rows if lines is None else lines),
               "csv": lambda: write_csv(rows, fieldnames=fields)}
    writers[getattr(fmt, "value", fmt)]()


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
    """A rich Console for stdout (results) or stderr (progress, notes); honours NO_COLOR. Its width
    is ``table.text_width``: a valid COLUMNS, the terminal's, or 80 (never rich's guess from a
    COLUMNS of 0 or less, which would print nothing)."""
    from rich.console import Console

    from lstm_cli.render.table import text_width

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            """rich's hook for a reader that went away (``| head``): rich would exit 1; the
            command line's boundary decides instead (exit 0, silently)."""
            self.quiet = True
            raise BrokenPipeError

        def print(self, *objects, **options) -> None:
            """As rich prints, but a sentence wrapped at the width keeps no space at a line's end."""
            from rich.text import Text

            soft_wrap = bool(options.pop("soft_wrap", False))
            if len(objects) == 1 and isinstance(objects[0], (str, Text)) and not soft_wrap:
                text = objects[0] if isinstance(objects[0], Text) else Text(objects[0])
                for line in text.wrap(self, self.width):
                    line.rstrip()
                    super().print(line, soft_wrap=True, **options)
                return
            super().print(*objects, soft_wrap=soft_wrap, **options)

    return _Console(stderr=stderr, highlight=False, width=text_width(sys.stderr if stderr else sys.stdout))
