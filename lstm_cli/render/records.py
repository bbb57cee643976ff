"""``lstm-demo runs``: the run records under a directory as a table, JSON or CSV; the
directories that are not readable runs as one line each on stderr."""

from __future__ import annotations

import sys

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


def write(listing, fmt, directory) -> None:
    """The rows on stdout in ``fmt`` (a ``config.Format``); every problem on stderr, one line each."""
    from lstm_cli.records import FIELDS
    from lstm_cli.render import write_rows

    for problem in listing.problems:
        print(f"lstm-demo: {shown(directory)}/{shown(problem)}", file=sys.stderr)

    def table() -> None:
        from lstm_cli.render.table import Column, render

        # a narrow terminal hides made and wall time, then model, then task; name and model may break
        columns = [Column("name", justify="left", fold=True), Column("status", justify="left"),
                   Column("task", justify="left", hide=3), Column("gap"),
                   Column("model", justify="left", fold=True, hide=2), Column("metric value", justify="left"),
                   Column("steps"), Column("wall time", hide=1), Column("made", justify="left", hide=1)]
        cells = []
        for row in listing.rows:
            metric = "-" if not row["metric"] else f"{SHORT.get(row['metric'], row['metric'])} {_value(row['value'])}"
            row_cells = (row["name"], row["status"], row["task"], row["gap"], row["model"], metric,
                         _value(row["steps"], 9), _seconds(row["wall_time"]), _made(row["made"]))
            cells.append([shown(cell).strip() for cell in row_cells])  # a foreign record cannot drive the terminal
        render(columns, cells, title=f"{shown(directory)}: {len(listing.rows)} run record(s)",
               notes=["metric value: the held-out metric at the last evaluation (acc: accuracy); made: when the run started (UTC); --format json, jsonl or csv: the seed too, "
                      "and the time to the second"])

    write_rows(fmt, listing.rows, table, fields=FIELDS)
