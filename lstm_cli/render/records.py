"""``lstm-demo runs``: the run records under a directory as a table, JSON or CSV; the
directories that are not readable runs as one line each on stderr."""

from __future__ import annotations

import sys

from lstm_cli.render import write_csv, write_json

FORMATS = ("table", "json", "csv")
SHORT = {"accuracy": "acc"}  # metric names in the table


def shown(value) -> str:
    """A field of a record made printable for a terminal: control characters (ESC of a colour or
    a screen-clearing sequence, an OSC title, a carriage return) and other invisible ones become
    their escapes (\\x1b), so a foreign record cannot drive the terminal; JSON and CSV keep them."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def _value(value, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return shown(value)
    try:
        return f"{float(value):.{digits}g}"
    except (TypeError, ValueError, OverflowError):
        return shown(value)


def _seconds(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return shown(value)
    try:
        return f"{float(value):.1f} s"
    except (TypeError, ValueError, OverflowError):
        return shown(value)


def _made(text) -> str:
    """2026-11-28T01:02:03+00:00 -> 2026-11-28 01:02 (UTC; the seconds are in json and csv)."""
    return "-" if not text else str(text).replace("T", " ")[:16]


def write(listing, fmt: str, directory) -> None:
    """The rows on stdout in ``fmt``; every problem on stderr, one line each."""
    if fmt not in FORMATS:
        from lstm_cli.errors import BadInput

        raise BadInput(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    for problem in listing.problems:
        print(f"lstm-demo: {shown(directory)}/{shown(problem)}", file=sys.stderr)
    if fmt == "json":
        write_json(listing.rows)
    elif fmt == "csv":
        from lstm_cli.records import FIELDS

        write_csv(listing.rows, fieldnames=FIELDS)
    else:
        from rich import box
        from rich.table import Table

        from lstm_cli.render import console

        from rich.text import Text

        table = Table(title=Text(f"{shown(directory)}: {len(listing.rows)} run record(s)"), title_justify="left",
                      box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
        # on a narrow terminal name, model, metric and made fold; the rest keep their width
        for column in ("name", "status", "task", "gap", "model", "metric", "steps", "time", "made"):
            folds = column in ("name", "model", "metric", "made")
            table.add_column(column, justify="right" if column in ("gap", "steps", "time") else "left",
                             no_wrap=not folds, overflow="fold", min_width=6 if folds else None)
        for row in listing.rows:
            metric = "-" if not row["metric"] else f"{SHORT.get(row['metric'], row['metric'])} {_value(row['value'])}"
            cells = (row["name"], row["status"], row["task"], row["gap"], row["model"], metric,
                     _value(row["steps"], 9), _seconds(row["wall_time"]), _made(row["made"]))
            table.add_row(*(Text(shown(cell)) for cell in cells))  # Text: no rich markup in a field
        out = console()
        if not out.is_terminal:  # a pipe or a file: one line per run, however wide
            out.width = max(out.width, out.measure(table, options=out.options.update_width(10_000)).maximum)
        out.print(table)
        out.print("metric: the held-out metric at the last evaluation (acc: accuracy); made: when the run "
                  "started (UTC); --format json or csv: the seed too, and the time to the second")
