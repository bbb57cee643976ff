"""Rendering: rich tables for people, JSON / JSONL / CSV for programs.

The only package that imports rich. Machine formats are written to stdout
with the standard library alone (no wrapping, no colour codes); everything
meant for people besides the result (progress, notes, warnings) goes to stderr.

Non-finite floats are written as "inf", "-inf" and "nan" (see ``lstm_cli.plain``).
"""

from __future__ import annotations

import csv
import sys
from typing import Any, Iterable, TextIO

from lstm_cli.plain import jsonable, to_json


def write_json(obj: Any, stream: TextIO | None = None, indent: int | None = 2) -> None:
    """One JSON document on stdout (or ``stream``)."""
    stream = stream or sys.stdout
    stream.write(to_json(obj, indent=indent) + "\n")
    stream.flush()


def write_jsonl(rows: Iterable[Any], stream: TextIO | None = None) -> None:
    """One JSON object per line."""
    stream = stream or sys.stdout
    for row in rows:
        stream.write(to_json(row, indent=None) + "\n")
    stream.flush()


def write_csv(rows: list[dict], stream: TextIO | None = None, fieldnames: list[str] | None = None) -> None:
    """Rows of dicts as CSV with a header; floats in full precision (repr)."""
    stream = stream or sys.stdout
    if fieldnames is None:
        fieldnames = list(dict.fromkeys(k for row in rows for k in row))
    writer = csv.DictWriter(stream, fieldnames=fieldnames, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else jsonable(v)) for k, v in row.items()})
    stream.flush()


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

    return Console(stderr=stderr, highlight=False)
