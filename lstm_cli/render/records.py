"""``lstm-demo runs``: the run records under a directory as a table, JSON or CSV; the
directories that are not readable runs as one line each on stderr."""

from __future__ import annotations

import sys

from lstm_cli.render import write_csv, write_json

FORMATS = ("table", "json", "csv")
SHORT = {"accuracy": "acc"}  # metric names in the table


def _value(value, digits: int = 4) -> str:
    if value is None:
        return "-"
    try:
        return f"{float(value):.{digits}g}"
    except (TypeError, ValueError):
        return str(value)


def _made(text) -> str:
    """2026-11-28T01:02:03+00:00 -> 2026-11-28 01:02 (UTC; the seconds are in json and csv)."""
    return "-" if not text else str(text).replace("T", " ")[:16]


def write(listing, fmt: str, directory) -> None:
    """The rows on stdout in ``fmt``; every problem on stderr, one line each."""
    if fmt not in FORMATS:
        from lstm_cli.errors import BadInput

        raise BadInput(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    for problem in listing.problems:
        print(f"lstm-demo: {directory}/{problem}", file=sys.stderr)
    if fmt == "json":
        write_json(listing.rows)
    elif fmt == "csv":
        from lstm_cli.records import FIELDS

        write_csv(listing.rows, fieldnames=FIELDS)
    else:
        from rich import box
        from rich.table import Table

        from lstm_cli.render import console

        table = Table(title=f"{directory}: {len(listing.rows)} run record(s)", title_justify="left",
                      box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
        # on a narrow terminal name, model, metric and made fold; the rest keep their width
        for column in ("name", "status", "task", "gap", "model", "metric", "steps", "time", "made"):
            folds = column in ("name", "model", "metric", "made")
            table.add_column(column, justify="right" if column in ("gap", "steps", "time") else "left",
                             no_wrap=not folds, overflow="fold", min_width=6 if folds else None)
        for row in listing.rows:
            metric = "-" if not row["metric"] else f"{SHORT.get(row['metric'], row['metric'])} {_value(row['value'])}"
            time = "-" if row["wall_time"] is None else f"{float(row['wall_time']):.1f} s"
            table.add_row(row["name"], row["status"], str(row["task"]), str(row["gap"]), str(row["model"]),
                          metric, _value(row["steps"], 9), time, _made(row["made"]))
        out = console()
        if not out.is_terminal:  # a pipe or a file: one line per run, however wide
            out.width = max(out.width, out.measure(table, options=out.options.update_width(10_000)).maximum)
        out.print(table)
        out.print("metric: the held-out metric at the last evaluation (acc: accuracy); made: when the run "
                  "started (UTC); --format json or csv: the seed too, and the time to the second")
