"""Rendering of scenarios and sweeps: the plan, progress lines, per-run results, the summary.

Results go to stdout (a rich table, or JSONL / CSV built from the same rows);
progress and failures go to stderr as plain lines, one per event, so a log
file of a long sweep reads well.
"""

from __future__ import annotations

import sys
from typing import Sequence

from lstm_cli.printed import sci
from lstm_cli.plain import jsonable, write_json, write_jsonl
from lstm_cli.render import write_rows
from lstm_cli.render.table import Column, render

# A table's column is named by its field in json, jsonl and csv, words apart: median_grad_first_step
# is "median grad first step" (one header line per word or two). A cell that shows two fields names
# both: "succeeded/runs".

GRAD_NOTE = ("grad first step: the carrier's gradient norm at the first input (the most steps back) relative "
             "to the answer step (0 steps back), at initialisation, on the probe batch of `lstm-demo gradients` "
             "with the same seed (||dL/dc|| for the LSTM, ||dL/dh|| for the other cells)")


def _num(value, digits: int = 3) -> str:
    return "-" if value is None else f"{float(value) + 0.0:.{digits}g}"  # -0.0 prints as 0


def _rate(row: dict) -> str:
    return f"{row['succeeded']}/{row['runs']}"


def _seconds(value) -> str:
    return "-" if value is None else f"{float(value):.1f} s"


# ---- plans ----

def list_runs(points, stream=None) -> None:
    """One run key per line (line i is ``lstm-demo run SCENARIO --index i``)."""
    stream = stream or sys.stdout
    for point in points:
        stream.write(point.key + "\n")
    stream.flush()


def plan_rows(points, sweep_dir=None, kept: Sequence[int] = ()) -> list[dict]:
    from lstm_cli.scenario import format_value, short_name

    rows = []
    for point in points:
        row = {"index": point.index, "key": point.key,
               **{short_name(k): format_value(v) if isinstance(v, dict) else jsonable(v) for k, v in point.values}}
        if sweep_dir is not None:
            row["state"] = "finished" if point.index in kept else "to run"
        rows.append(row)
    return rows


def write_plan(scenario, points, fmt, sweep_dir=None, kept: Sequence[int] = ()) -> None:
    rows = plan_rows(points, sweep_dir, kept)

    def table() -> None:
        title = f"{scenario.name}: {len(points)} run(s)" + (f", {len(points) - len(kept)} to run"
                                                           if sweep_dir is not None else "")
        columns = [Column("index"), Column("key", justify="left", fold=True)]
        columns += [Column("state", justify="left")] if sweep_dir is not None else []
        render(columns, [[str(r["index"]), r["key"], *([r["state"]] if sweep_dir is not None else [])]
                         for r in rows], title=title)

    write_rows(fmt, rows, table)


# ---- progress ----

class Progress:
    """Plain stderr lines: one when a run starts (only with one worker), one when it ends."""

    def __init__(self, total: int, stream=None, scenario=None, jobs: int | None = None,
                 scheduler: str | None = None, run_lines: bool = False, out=None):
        self.total, self.finished, self.out = total, 0, out
        self.stream = stream or sys.stderr
        self.scenario, self.jobs, self.scheduler = scenario, jobs, scheduler
        self.run_lines = run_lines  # sweep --format jsonl: also a {"type": "run"} line on stdout per run

    def plan(self, todo, kept) -> None:
        """The sweep's first line: runs to do, kept and workers (and the kept runs' lines)."""
        import os

        self.total = len(todo)
        workers = min(self.jobs or os.cpu_count() or 1, max(1, len(todo)))
        where = f"Dask scheduler {self.scheduler}" if self.scheduler else f"{workers} worker(s)"
        self._say(f"lstm-demo: sweep {self.scenario.name}: {len(todo)} run(s) to do"
                  + (f", {len(kept)} kept" if kept else "") + f", {where}")
        if self.run_lines:
            write_jsonl([run_line(p.index, p.key, kept[p.index], None, kept=True)
                         for p in self.scenario.points() if p.index in kept])

    def finish(self, result) -> None:
        """The sweep's last line; RunFailed when a run failed."""
        from lstm_cli.errors import RunFailed

        earlier = getattr(result, "earlier", 0)
        self._say(f"lstm-demo: {len(result.outcomes)} runs, {result.wall_time:.1f} s; summary.csv and "
                  f"summary.jsonl in {result.sweep_dir}/"
                  + (f" (they also count {earlier} finished run(s) of an earlier, larger grid there)"
                     if earlier else ""))
        if result.failures:
            keys = ", ".join(o.key for o in result.failures[:3]) + (", ..." if len(result.failures) > 3 else "")
            raise RunFailed(f"{len(result.failures)} of {len(result.outcomes)} runs failed ({keys}); "
                            f"run the same command with --resume to retry them")

    def _say(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def done(self, job, record: dict | None, error: str | None) -> None:
        self.finished += 1
        if self.run_lines:
            try:
                write_jsonl([run_line(job.index, job.key, record, error)])
            except BrokenPipeError:  # | head: the runs' lines have no reader any more, so the sweep stops
                from pathlib import Path

                from lstm_cli.errors import RunFailed

                where = Path(self.out or ".") / (self.scenario.name if self.scenario else "")
                raise RunFailed(f"stdout was closed after {self.finished} of {self.total} run(s); the sweep "
                                f"stopped, and the records in {where}/ say which runs finished (the ones "
                                f"stopped say interrupted); finish it with the same command and --resume") from None
        head = f"[{self.finished}/{self.total}] {job.key}"
        if error is not None:
            self._say(f"{head}: FAILED: {error}")
        elif getattr(record, "kept", False):
            self._say(f"{head}: kept: finished by another process with the same settings, "
                      f"status {record.get('status')}")
        elif record.get("status") == "diverged":
            self._say(f"{head}: diverged at step {record.get('diverged_at')} ({record.get('wall_time', 0):.1f} s)")
        else:
            metric = record.get("metric")
            verdict = "success" if record.get("success") else "no success"
            self._say(f"{head}: {verdict} after {record.get('steps')} steps, {metric} "
                      f"{_num(record.get(metric), 4)} ({record.get('wall_time', 0):.1f} s)")


def write_gradient_groups(groups, fmt, rows: str, alone: bool):
    """Render a scenario's probe groups as `lstm-demo gradients` does; returns the JSON document(s).
    With a train: section too (not ``alone``) only the table is drawn here: the command writes the
    machine formats of both parts."""
    from lstm_cli.render import gradients as gradient_view

    documents = [gradient_view.json_document(profiles, settings) for profiles, settings in groups]
    document = documents[0] if len(documents) == 1 else documents

    name = getattr(fmt, "value", fmt)
    if name == "json":  # one document for every group
        if alone:
            write_json(document)
    elif alone or name == "table":
        for profiles, settings in groups:
            gradient_view.write(profiles, settings, fmt, rows)
    return document


# ---- the summary ----

def summary_title(result, scenario) -> str:
    return (f"{scenario.name}: {len(result.outcomes)} runs ({result.ran} run now, {result.skipped} kept), "
            f"{result.wall_time:.0f} s wall; records in {result.sweep_dir}")


# ---- sweep --format jsonl: a line per run as it finishes, then the summary ----
#
#   {"type": "run", ...}      one per run, written when the run finishes (or, with --resume, at
#                             the start for each run kept from before: "kept": true); the fields
#                             of RUN_LINE_FIELDS
#   {"type": "summary", ...}  after the last run, one per setting: a row of summary.jsonl

RUN_LINE_FIELDS = ["type", "index", "key", "kept", "status", "success", "steps", "metric", "value", "wall_time",
                   "clipped_fraction", "run_dir", "error"]


def run_line(index: int, key: str, record: dict | None, error: str | None, kept: bool = False) -> dict:
    """The ``{"type": "run"}`` line of one finished run (``record`` None and ``error`` set: it failed)."""
    record = record or {}
    metric = record.get("metric") if isinstance(record.get("metric"), str) else None  # a tampered kept record
    clipping = record.get("clipping") if isinstance(record.get("clipping"), dict) else {}
    return {"type": "run", "index": index, "key": key, "kept": kept,
            "status": "failed" if error is not None else record.get("status"),
            "success": record.get("success"), "steps": record.get("steps"), "metric": metric,
            "value": record.get(metric) if metric else None, "wall_time": record.get("wall_time"),
            "clipped_fraction": clipping.get("clipped_fraction"),
            "run_dir": record.get("run_dir"), "error": error}


def write_summary(result, scenario, fmt: str) -> None:
    """The summary on stdout; RunFailed when its reader has gone (a sweep into ``| head``)."""
    from lstm_cli.errors import RunFailed

    try:
        _write_summary(result, scenario, fmt)
    except BrokenPipeError:
        raise RunFailed(f"stdout was closed before the summary was written; every run finished: "
                        f"summary.csv and summary.jsonl are in {result.sweep_dir}/") from None


def _write_summary(result, scenario, fmt: str) -> None:
    rows = result.summary

    def table() -> None:
        metric = next((r["metric"] for r in rows if r.get("metric")), "metric")
        columns = [Column(axis, justify="left") for axis in result.axes] + [
            Column("succeeded/\nruns"), Column("median steps\nto success", hide=3),
            Column("median seconds\nto success", hide=1), Column(f"median final\n{metric}"),
            Column("median grad\nfirst step"), Column("diverged", hide=2), Column("failed", hide=2)]
        cells = [[*(str(row[a]) for a in result.axes), _rate(row), _num(row["median_steps_to_success"], 6),
                  _seconds(row["median_seconds_to_success"]), _num(row["median_final_metric"], 4),
                  sci(row["median_grad_first_step"]), str(row["diverged"]), str(row["failed"])] for row in rows]
        notes = [f"median: over the seeds of each row; steps and seconds to success: of the successful runs only; "
                 f"final {metric}: held-out, at the last evaluation; {GRAD_NOTE}; diverged: runs whose loss or "
                 f"gradient became NaN or inf; failed: runs that did not finish"]
        render(columns, cells, title=summary_title(result, scenario), notes=notes)

    write_rows(fmt, rows, table, lines=[{"type": "summary", **row} for row in rows])


# ---- lstm-demo run: the runs of a scenario ----

RUN_FIELDS = ["key", "status", "success", "steps", "metric", "value", "wall_time", "grad_first_step",
              "clipped_fraction", "run_dir"]


def run_rows(points, records) -> list[dict]:
    from lstm_cli.sweep import grad_at_first_step

    rows = []
    for point, record in zip(points, records):
        metric = record.get("metric")
        rows.append({"key": point.key, "status": record.get("status"), "success": record.get("success"),
                     "steps": record.get("steps"), "metric": metric, "value": record.get(metric),
                     "wall_time": record.get("wall_time"), "grad_first_step": grad_at_first_step(record),
                     "clipped_fraction": (record.get("clipping") or {}).get("clipped_fraction"),
                     "run_dir": record.get("run_dir")})
    return rows


def write_runs(scenario, points, records, fmt) -> None:
    """The training results of ``lstm-demo run``: a table and csv of ``RUN_FIELDS``, or the result
    records themselves (json, jsonl)."""
    rows = run_rows(points, records)

    def table() -> None:
        columns = [Column("key", justify="left", fold=True), Column("status", justify="left", hide=3),
                   Column("success", justify="left"), Column("steps"), Column("metric value", justify="left"),
                   Column("wall time", hide=1), Column("grad first\nstep"), Column("clipped\nfraction", hide=2)]
        cells = [[row["key"], row["status"], _yes(row["success"]), str(row["steps"]),
                  f"{row['metric']} {_num(row['value'], 4)}", _seconds(row["wall_time"]),
                  sci(row["grad_first_step"]), _clipped(record)] for row, record in zip(rows, records)]
        notes = [f"{GRAD_NOTE}; steps: the training steps taken (of a diverged run, the last is the step that "
                 f"diverged); clipped fraction: of the steps, those whose gradient norm "
                 f"clipping scaled down (- with clip 0)"]
        render(columns, cells, title=f"{scenario.name}: training", notes=notes)

    write_rows(fmt, rows, table, fields=RUN_FIELDS, document=records[0] if len(records) == 1 else records,
               lines=records)


def _yes(success) -> str:
    return "-" if success is None else ("yes" if success else "no")


def _clipped(record: dict) -> str:
    """The fraction of steps clipped (3 digits); "-" when clipping was off or no step was taken."""
    clipping = record.get("clipping") or {}
    if not clipping.get("steps") or not float(clipping.get("clip") or 0) > 0:
        return "-"
    return _num(clipping["clipped_fraction"])


def list_scenarios(entries, fmt="table") -> None:
    """``lstm-demo scenarios``: name, one-line description, path."""
    rows = [{"name": name, "description": description, "path": str(path)} for name, path, description in entries]

    def table() -> None:
        columns = [Column("name", justify="left"), Column("description", justify="left", fold=True),
                   Column("path", justify="left", hide=1, fold=True)]
        render(columns, [[r["name"], r["description"], r["path"]] for r in rows])

    write_rows(fmt, rows, table)


def show_scenario(text: str) -> None:
    """``lstm-demo scenarios show NAME``: the file as it is, comments included."""
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()
