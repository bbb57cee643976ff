"""``lstm-demo runs``: the run records under a directory as a table, JSON, JSONL or CSV (the
directories that are not readable runs as one line each on stderr); ``runs show`` one record
and ``runs compare`` several side by side, in the same formats."""

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


def _success(value) -> str:
    return "-" if value is None else "yes" if value is True else "no" if value is False else str(value)


def _cell(value, key: str = "") -> str:
    """A value of ``runs show`` / ``compare`` in a table (JSON and CSV hold it in full)."""
    if key.endswith("wall_time") and isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{float(value):.1f} s"
    if isinstance(value, bool) or value is None:
        return _success(value)
    if isinstance(value, float):
        return _value(value, 6)
    if isinstance(value, (list, tuple)):
        return " ".join(shown(v) for v in value) or "-"
    return shown(value)


def write_show(record: dict, fmt) -> None:
    """``runs show``: the record's sections (json: the document; jsonl, csv: one line per section and key)."""
    from lstm_cli.listing import SECTIONS
    from lstm_cli.render import write_rows
    from lstm_cli.render.table import Column, render

    lines = [{"section": section, "key": key, "value": value}
             for section in SECTIONS for key, value in record[section].items()]

    def table() -> None:
        print(f"run record {shown(record['run_dir'])}")
        for section in SECTIONS:
            render([Column("key", justify="left"), Column("value", justify="left", fold=True)],
                   [[shown(key), _cell(value, key)] for key, value in record[section].items()], title=section)

    write_rows(fmt, lines, table, fields=["section", "key", "value"], document=record)


def write_compare(compared: dict, fmt) -> None:
    """``runs compare``: settings that differ, outcome and gradient summary, one column per run
    (json: the document; jsonl: one line per section and key, the values in the runs' order;
    csv: the same with a column per run)."""
    from lstm_cli.render import write_rows
    from lstm_cli.render.table import Column, render

    names = [run["name"] for run in compared["runs"]]
    parts = ("settings", "outcome", "gradient")
    lines = [(section, key, values) for section in parts for key, values in compared[section].items()]

    def table() -> None:
        for section in parts:
            title = "settings that differ" if section == "settings" else section
            if not compared[section]:
                print(f"{title}: none")
                continue
            columns = [Column("key", justify="left"), *(Column(shown(name), justify="left", fold=True) for name in names)]
            render(columns, [[shown(key), *(_cell(v, key) for v in values)] for key, values in compared[section].items()],
                   title=title)
        same = compared["same_settings"]
        print(f"settings alike in every run: {', '.join(same) if same else 'none'}")

    write_rows(fmt, [{"section": section, "key": key, **dict(zip(names, values))} for section, key, values in lines],
               table, fields=["section", "key", *names], document=compared,
               lines=[{"section": section, "key": key, "values": values} for section, key, values in lines])


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
                   Column("success", justify="left"), Column("task", justify="left", hide=3), Column("gap"),
                   Column("model", justify="left", fold=True, hide=2), Column("metric value", justify="left"),
                   Column("steps"), Column("wall time", hide=1), Column("made", justify="left", hide=1)]
        cells = []
        for row in listing.rows:
            metric = "-" if not row["metric"] else f"{SHORT.get(row['metric'], row['metric'])} {_value(row['value'])}"
            success = "-" if row["status"] in ("running", "abandoned", "no result") else _success(row["success"])
            row_cells = (row["name"], row["status"], success, row["task"], row["gap"], row["model"], metric,
                         _value(row["steps"], 9), _seconds(row["wall_time"]), _made(row["made"]))
            cells.append([shown(cell).strip() for cell in row_cells])  # a foreign record cannot drive the terminal
        render(columns, cells, title=f"{shown(directory)}: {len(listing.rows)} run record(s)",
               notes=["success: the task's criterion met at the last evaluation of a completed run; metric value: "
                      "the held-out metric then (acc: accuracy); made: when the run started (UTC); --format json, "
                      "jsonl or csv: the seed too, and the time to the second"])

    write_rows(fmt, listing.rows, table, fields=FIELDS)
