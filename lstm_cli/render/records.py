"""``lstm-demo runs``: the run records under a directory as a table, JSON, JSONL or CSV (the
directories that are not readable runs as one line each on stderr); ``runs show`` one record
and ``runs compare`` several side by side, in the same formats."""

from __future__ import annotations

import sys

from lstm_cli.render import write_csv, write_json, write_jsonl

FORMATS = ("table", "json", "jsonl", "csv")
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
        return " ".join(str(v) for v in value) or "-"
    return str(value)


def _print_wide(table) -> None:
    from lstm_cli.render import console, widen_unless_terminal

    out = console()
    widen_unless_terminal(out, table)
    out.print(table)


def _section_table(title: str, headers: list[str]):
    from rich import box
    from rich.table import Table

    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for i, header in enumerate(headers):
        table.add_column(header, overflow="fold", no_wrap=i == 0)
    return table


def write_show(shown: dict, fmt: str) -> None:
    """``runs show``: the record's sections (json: the document; jsonl, csv: one line per section and key)."""
    from lstm_cli.listing import SECTIONS

    if fmt == "json":
        write_json(shown)
        return
    lines = [{"section": section, "key": key, "value": value}
             for section in SECTIONS for key, value in shown[section].items()]
    if fmt == "jsonl":
        write_jsonl(lines)
    elif fmt == "csv":
        write_csv(lines, fieldnames=["section", "key", "value"])
    else:
        print(f"run record {shown['run_dir']}")
        for section in SECTIONS:
            table = _section_table(section, ["key", "value"])
            for key, value in shown[section].items():
                table.add_row(key, _cell(value, key))
            _print_wide(table)


def write_compare(compared: dict, fmt: str) -> None:
    """``runs compare``: settings that differ, outcome and gradient summary, one column per run
    (json: the document; jsonl: one line per section and key, the values in the runs' order;
    csv: the same with a column per run)."""
    names = [run["name"] for run in compared["runs"]]
    if fmt == "json":
        write_json(compared)
        return
    parts = ("settings", "outcome", "gradient")
    lines = [(section, key, values) for section in parts for key, values in compared[section].items()]
    if fmt == "jsonl":
        write_jsonl([{"section": section, "key": key, "values": values} for section, key, values in lines])
    elif fmt == "csv":
        write_csv([{"section": section, "key": key, **dict(zip(names, values))} for section, key, values in lines],
                  fieldnames=["section", "key", *names])
    else:
        for section in parts:
            title = "settings that differ" if section == "settings" else section
            if not compared[section]:
                print(f"{title}: none")
                continue
            table = _section_table(title, ["key", *names])
            for key, values in compared[section].items():
                table.add_row(key, *(_cell(v, key) for v in values))
            _print_wide(table)
        same = compared["same_settings"]
        print(f"settings alike in every run: {', '.join(same) if same else 'none'}")


def write(listing, fmt: str, directory) -> None:
    """The rows on stdout in ``fmt``; every problem on stderr, one line each."""
    if fmt not in FORMATS:
        from lstm_cli.errors import BadInput

        raise BadInput(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    for problem in listing.problems:
        print(f"lstm-demo: {directory}/{problem}", file=sys.stderr)
    if fmt == "json":
        write_json(listing.rows)
    elif fmt == "jsonl":
        write_jsonl(listing.rows)
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
        for column in ("name", "status", "success", "task", "gap", "model", "metric", "steps", "time", "made"):
            folds = column in ("name", "model", "metric", "made")
            table.add_column(column, justify="right" if column in ("gap", "steps", "time") else "left",
                             no_wrap=not folds, overflow="fold", min_width=6 if folds else None)
        for row in listing.rows:
            metric = "-" if not row["metric"] else f"{SHORT.get(row['metric'], row['metric'])} {_value(row['value'])}"
            time = "-" if row["wall_time"] is None else f"{float(row['wall_time']):.1f} s"
            success = "-" if row["status"] in ("running", "abandoned", "no result") else _success(row["success"])
            table.add_row(row["name"], row["status"], success, str(row["task"]), str(row["gap"]),
                          str(row["model"]),
                          metric, _value(row["steps"], 9), time, _made(row["made"]))
        out = console()
        if not out.is_terminal:  # a pipe or a file: one line per run, however wide
            out.width = max(out.width, out.measure(table, options=out.options.update_width(10_000)).maximum)
        out.print(table)
        out.print("success: the task's criterion met at the last evaluation of a completed run; metric: the "
                  "held-out metric then (acc: accuracy); made: start time, UTC")
