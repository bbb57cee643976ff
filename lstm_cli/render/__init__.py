"""Rendering: rich tables for people, JSON / JSONL / CSV for programs.

The only package that imports rich. Machine formats are written to stdout
with the standard library alone (no wrapping, no colour codes); everything
meant for people besides the result (progress, notes, warnings) goes to stderr.

Non-finite floats are written as "inf", "-inf" and "nan" (see ``lstm_cli.plain``).
"""

from __future__ import annotations

from lstm_cli.plain import jsonable, write_csv, write_json, write_jsonl  # noqa: F401  (re-exported)


def console(stderr: bool = False):
    """A rich Console for stdout (results) or stderr (progress, notes); honours NO_COLOR."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)
