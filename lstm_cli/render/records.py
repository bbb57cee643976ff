"""``lstm-demo runs``: the run records under a directory as a table, JSON or CSV; the
directories that are not readable runs as one line each on stderr."""

from __future__ import annotations

import sys

from lstm_cli.plain import write_csv, write_json

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
        _table(listing, directory)


COLUMNS = ("name", "status", "task", "gap", "model", "metric", "steps", "time", "made")
RIGHT = ("gap", "steps", "time")
FOLDS = ("name", "model", "metric", "made")  # on a narrow terminal these fold; the rest keep their width
NOTE = ("metric: the held-out metric at the last evaluation (acc: accuracy); made: when the run started (UTC); "
        "--format json or csv: the seed too, and the time to the second")


def _cells(row) -> tuple[str, ...]:
    metric = "-" if not row["metric"] else f"{SHORT.get(row['metric'], row['metric'])} {_value(row['value'])}"
    cells = (row["name"], row["status"], row["task"], row["gap"], row["model"], metric,
             _value(row["steps"], 9), _seconds(row["wall_time"]), _made(row["made"]))
    return tuple(shown(cell).strip() for cell in cells)  # rich trims a cell's ends when it lays it out


def _table(listing, directory) -> None:
    from lstm_cli.render import console

    title = f"{shown(directory)}: {len(listing.rows)} run record(s)"
    rows = [_cells(row) for row in listing.rows]
    out = console()
    if not out.is_terminal:  # a pipe or a file: one line per run, however wide
        lines = plain_table(title, rows) if (out.encoding or "").lower().startswith("utf") else None
        if lines is not None:  # rich's layout, written directly: 5,000 rows in a fraction of rich's time
            out.width = max(out.width, len(lines[1]))  # the blank second line: the width in cells
            sys.stdout.write("\n".join(lines) + "\n")
            out.print(NOTE)
            return
    table = rich_table(title, rows)
    if not out.is_terminal:
        out.width = max(out.width, out.measure(table, options=out.options.update_width(10_000)).maximum)
    out.print(table)
    out.print(NOTE)


def rich_table(title: str, rows):
    """The table as rich lays it out (and folds it on a narrow terminal)."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(title), title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                  collapse_padding=True)
    for column in COLUMNS:
        table.add_column(column, justify="right" if column in RIGHT else "left", no_wrap=column not in FOLDS,
                         overflow="fold", min_width=6 if column in FOLDS else None)
    for cells in rows:
        table.add_row(*(Text(cell) for cell in cells))  # Text: no rich markup in a field
    return table


def plain_table(title: str, rows) -> list[str] | None:
    """The lines ``rich_table`` gives at its natural width (nothing folds) on a UTF-8 stream,
    made by string formatting; None where that layout is not simply columns (no rows, a title
    wider than the table), which rich then lays out itself."""
    from rich.cells import cell_len

    if not rows:
        return None
    widths = [max(6 if column in FOLDS else 0, cell_len(column)) for column in COLUMNS]
    lengths = [[cell_len(cell) for cell in cells] for cells in rows]
    for row in lengths:
        widths = [max(w, n) for w, n in zip(widths, row)]
    total = 2 + sum(widths) + 2 * (len(widths) - 1)
    if cell_len(title) > total:
        return None

    def line(cells, sizes) -> str:
        parts = [" " * (w - n) + c if column in RIGHT else c + " " * (w - n)
                 for column, c, n, w in zip(COLUMNS, cells, sizes, widths)]
        return " " + "  ".join(parts) + " "

    rule = "\u2500"
    return [title + " " * (total - cell_len(title)), " " * total,
            line(COLUMNS, [cell_len(c) for c in COLUMNS]), " " + rule * (total - 2) + " ",
            *(line(cells, sizes) for cells, sizes in zip(rows, lengths)), " " * total]
