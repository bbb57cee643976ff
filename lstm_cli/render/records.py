"""``lstm-demo runs``: the run records under a directory as a table, JSON or CSV; the
directories that are not readable runs as one line each on stderr."""

from __future__ import annotations

import sys

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


def write(listing, fmt, directory) -> None:
    """The rows on stdout in ``fmt`` (a ``config.Format``); every problem on stderr, one line each."""
    from lstm_cli.records import FIELDS
    from lstm_cli.render import write_rows

    for problem in listing.problems:
        print(f"lstm-demo: {directory}/{problem}", file=sys.stderr)

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
            time = "-" if row["wall_time"] is None else f"{float(row['wall_time']):.1f} s"
            cells.append([row["name"], row["status"], str(row["task"]), str(row["gap"]), str(row["model"]),
                          metric, _value(row["steps"], 9), time, _made(row["made"])])
        render(columns, cells, title=f"{directory}: {len(listing.rows)} run record(s)",
               notes=["metric value: the held-out metric at the last evaluation (acc: accuracy); made: when the run started (UTC); --format json, jsonl or csv: the seed too, "
                      "and the time to the second"])

    write_rows(fmt, listing.rows, table, fields=FIELDS)
