"""Sweeps: run a scenario's grid in worker processes, resume it, aggregate over seeds.

    <out>/<scenario>/
        sweep.json              the scenario, its axes and every run's key and config
        <key>/                  one run record per grid point (``runs.run_training``),
                                e.g. gap=50,model=lstm,seed=3/result.json
        summary.csv             the aggregate over seeds, one row per setting
        summary.jsonl

The runs are executed by ``pool.run_jobs`` (local worker processes, one BLAS
thread each) or any executor with the same interface (see pool.py). The runs
that differ only in their seed are one unit of work, trained together as a
seed stack (``seed_stacks``, ``stacked``; ``stack=False``: each alone), and
reported run by run.

Resume: a run whose result.json says it finished ("completed", or "diverged":
a diverged run is a deterministic outcome, running it again gives the same
NaN) *with the same configuration* is kept; anything else ("running" from a
killed sweep, "interrupted", "failed", no record) is run again from scratch.
Every file is written atomically, so a kill leaves either the old or the new
record, never half of one.

Two sweeps into one ``--out`` at once: each run directory has a lock
(``files.locked``) that its writer holds. A worker that finds a run locked by
another process waits for it and then keeps the record when it finished with
the same settings (its progress line says "kept: finished by another
process"), so every run is done once. A run that is being written elsewhere
is not counted as an existing record when the sweep is planned. The sweep's
own files (sweep.json, the summaries) are written under the lock of the
sweep directory.

A run that raises is a *failure*: it is reported on stderr when it happens,
the other runs go on, and the sweep's exit code is 1. A run that diverges is
an *outcome* (not successful, counted in the summary's ``diverged`` column).
"""

from __future__ import annotations

import json
import math
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from lstm_cli import pool, seed_stacks
from lstm_cli.errors import BadInput, RunFailed
from lstm_cli.pool import Job

SWEEP_FILE, SUMMARY_CSV, SUMMARY_JSONL = "sweep.json", "summary.csv", "summary.jsonl"


@dataclass
class RunOutcome:
    index: int
    key: str
    values: tuple
    result: dict | None  # result.json, or None when the run failed before writing one
    error: str | None = None  # a failure (the run raised, or its worker died)
    skipped: bool = False  # kept from an earlier sweep (--resume)

    @property
    def failed(self) -> bool:
        return self.error is not None


@dataclass
class SweepResult:
    sweep_dir: Path
    outcomes: list[RunOutcome]
    summary: list[dict]
    axes: list[str]
    wall_time: float
    ran: int = 0
    skipped: int = 0
    failures: list[RunOutcome] = field(default_factory=list)
    earlier: int = 0  # finished runs of an earlier, larger grid, counted in the summary too


# ---- the worker side: what each job runs ----

def train_job(job: Job) -> dict:
    """The default run function: train ``job.config`` into ``sweep_dir/key``.

    A record that another process is writing is waited for, then kept when it finished with
    the same settings (a ``runs.KeptRecord``, which the progress line names); any other
    record there is replaced (the plan already refused existing records unless --resume
    was given)."""
    from lstm_cli import runs
    from lstm_cli.train import TrainConfig

    if job.members:
        return seed_stacks.train_stack(job)
    return runs.run_training(TrainConfig.from_dict(job.config), Path(job.sweep_dir), name=job.key,
                             existing="resume", wait=True)


# ---- a sweep of a scenario ----

def sweep_dir_of(scenario, out: Path, name: str | None = None) -> Path:
    """OUT/NAME, by default OUT/<scenario name>; one plain directory name (no "..", no "/"), and OUT
    not empty (``Path("")`` would be the current directory)."""
    from lstm_cli.files import check_name, check_out

    check_out(out)
    check_name(scenario.name if name is None else name, "scenario name" if name is None else "sweep name")
    return Path(out) / (scenario.name if name is None else name)


def new_sweep_name(scenario, out: Path, points=None) -> str:
    """The first of ``runs.unique_names(<scenario name>)`` under ``out`` where none of ``points`` (default:
    every point of the scenario) holds a record or is being written: where a sweep or a run given
    neither a name nor --resume goes. Per point, so that the runs of one grid started apart
    (``run --index I`` in a job array) share the scenario's directory."""
    from lstm_cli import runs

    sweep_dir_of(scenario, out)
    keys = [point.key for point in (scenario.points() if points is None else points)]
    for candidate in runs.unique_names(scenario.name):
        path = Path(out) / candidate
        if path.exists() and not path.is_dir() and not path.is_symlink():  # a link is refused where it is, never passed over
            continue
        if not any(runs.has_record(path / key) or runs.is_locked(path / key) for key in keys):
            return candidate
    raise AssertionError("unreachable: unique_names ends with BadInput")


def plan(scenario, out: Path, resume: bool, name: str | None = None) -> tuple[Path, list, list[Job], dict[int, dict]]:
    """(sweep dir, points, jobs to run, {index: kept result}) without running anything.

    Every run must be possible (its memory within the limit) before any starts. A record
    that another process is writing now (its lock is held) is neither kept nor stale: its
    job waits for that writer (``train_job``). ``name``: the sweep directory's (default:
    the scenario's)."""
    from lstm_cli import rundir, runs
    from lstm_cli.files import is_locked

    points = scenario.points()
    sweep_dir = sweep_dir_of(scenario, out, name)
    configs = {}
    for point in points:
        config = point.train_config().resolved()
        runs.check_memory(config)
        configs[point.index] = config.to_dict()
    kept: dict[int, dict] = {}
    stale, changed = [], []
    for point in points:
        run_dir = sweep_dir / point.key
        record = rundir.finished_record(run_dir, configs[point.index])
        if record is not None:
            kept[point.index] = record
        elif rundir.has_record(run_dir) and not is_locked(run_dir):
            difference = rundir.settings_changed(run_dir, configs[point.index])
            if difference is not None:
                changed.append(f"{point.key} ({difference})")
            else:
                stale.append(point.key)
    if changed:  # a finished result is never replaced by one made with other settings without a word
        raise BadInput(f"{sweep_dir} holds {len(changed)} finished run(s) made with other settings: "
                       + "; ".join(changed[:3]) + ("; ..." if len(changed) > 3 else "")
                       + "; choose another --out (or remove those runs to make them again)")
    if (kept or stale) and not resume:
        raise BadInput(f"{sweep_dir} already holds {len(kept) + len(stale)} run record(s) of this sweep; "
                       f"pass --resume to keep the finished ones, or leave out --name for a new directory")
    jobs = [Job(p.index, p.key, configs[p.index], str(sweep_dir)) for p in points if p.index not in kept]
    return sweep_dir, points, jobs, kept


def run_sweep(scenario, out: Path, jobs: int | None = None, resume: bool = False,
              run: Callable[[Job], dict] = train_job, on_plan=None, on_start=None,
              on_done=None, executor: pool.Executor = pool.run_jobs, stack: bool = False,
              name: str | None = None) -> SweepResult:
    """Run every point of ``scenario`` not already finished into OUT/NAME (default: the scenario's
    name); write and return the summary.

    ``executor`` runs the jobs (``pool.run_jobs``, local worker processes, by default);
    any function with its signature can take its place (see pool.py). With ``stack`` and the
    default ``run``, the runs that differ only in their seed train together (``stacks``)."""
    from lstm_cli.files import locked, make_directory, remove_stray_temporaries

    if "train" not in scenario.parts:
        raise BadInput(f"{scenario.name} has no train: section; a sweep trains models "
                       f"(use `lstm-demo run {scenario.name}` for a gradients-only scenario)")
    start = time.perf_counter()
    sweep_dir, points, todo, kept = plan(scenario, out, resume, name)
    make_directory(sweep_dir, "sweep directory")
    earlier = earlier_runs(sweep_dir, points)
    write_sweep_file(sweep_dir, SWEEP_FILE, json.dumps(sweep_record(scenario, points, earlier), indent=2))
    for index in kept:  # temporaries a killed writer left beside a finished record
        run_dir = sweep_dir / points[index].key
        try:
            with locked(run_dir):
                remove_stray_temporaries(run_dir)
        except BadInput:  # another process holds it: it cleans up itself
            pass
    if on_plan:
        on_plan(todo, kept)
    workers = jobs or os.cpu_count() or 1
    units = seed_stacks.stacks(todo, workers) if stack and run is train_job else todo
    # longest first, so that no worker is left alone with the slowest run at the end
    done = executor(sorted(units, key=estimated_cost, reverse=True), workers, run=run,
                    on_start=seed_stacks.each_run(on_start), on_done=seed_stacks.each_run(on_done))
    done = seed_stacks.by_run(units, done)
    outcomes = []
    for point in points:
        if point.index in kept:
            outcomes.append(RunOutcome(point.index, point.key, point.values, kept[point.index], skipped=True))
        else:
            record, error = done[point.index]
            outcomes.append(RunOutcome(point.index, point.key, point.values, record, error,
                                       skipped=bool(getattr(record, "kept", False))))
    axes = [a for a in scenario.axes if a != "seed"]
    summary = aggregate(outcomes + earlier, axes)  # a smaller grid resumed never cuts the summary down
    axes = [short_name(a) for a in axes]
    write_summary(sweep_dir, summary)
    skipped = sum(o.skipped for o in outcomes)
    return SweepResult(sweep_dir=sweep_dir, outcomes=outcomes, summary=summary, axes=axes,
                       wall_time=time.perf_counter() - start, ran=len(outcomes) - skipped, skipped=skipped,
                       failures=[o for o in outcomes if o.failed], earlier=len(earlier))


def earlier_runs(sweep_dir: Path, points) -> list[RunOutcome]:
    """The finished runs that sweep.json lists from an earlier sweep into ``sweep_dir`` and that are
    not in this grid (resumed with fewer seeds, say): kept in sweep.json and in the summary."""
    from lstm_cli import rundir
    from lstm_cli.files import check_name
    from lstm_cli.files import read_regular

    try:
        listed = json.loads(read_regular(sweep_dir / SWEEP_FILE)).get("runs")
    except (OSError, ValueError, AttributeError, RecursionError):
        return []
    keys = {point.key for point in points}
    found = []
    for entry in listed if isinstance(listed, list) else []:
        key = entry.get("key") if isinstance(entry, dict) else None
        values = entry.get("values") if isinstance(entry, dict) else None
        if not isinstance(key, str) or key in keys or not isinstance(values, dict):
            continue
        try:
            check_name(key, "run key")
        except BadInput:
            continue
        record = rundir.read_result(sweep_dir / key)
        if record is not None and record.get("status") in rundir.FINISHED:
            keys.add(key)
            found.append(RunOutcome(-1 - len(found), key, tuple(values.items()), record, skipped=True))
    return found


def write_sweep_file(sweep_dir: Path, name: str, text: str) -> None:
    """Write one of the sweep's own files atomically, under the sweep directory's lock (another
    sweep into the same directory may be writing it too); stray temporaries go first."""
    from lstm_cli.files import atomic_write_text, locked, remove_stray_temporaries

    try:
        with locked(sweep_dir, wait=True):
            remove_stray_temporaries(sweep_dir)
            atomic_write_text(sweep_dir / name, text)
    except OSError as err:
        raise RunFailed(f"cannot write {sweep_dir / name}: {err.strerror}") from None


def summarise(scenario, points, records: list[dict]) -> tuple[list[dict], list[str]]:
    """The summary rows over seeds and their axes (short names) of records made by ``lstm-demo run``,
    one per point, as ``run_sweep`` summarises its outcomes."""
    outcomes = [RunOutcome(p.index, p.key, p.values, record) for p, record in zip(points, records)]
    axes = [a for a in scenario.axes if a != "seed"]
    return aggregate(outcomes, axes), [short_name(a) for a in axes]


def estimated_cost(job: Job) -> float:
    """A rough bound of a run's work: sequence length x step budget x the cell's gate blocks."""
    from lstm_cli import cells
    from lstm_cli.tasks import get_task

    if job.members:
        return sum(estimated_cost(member) for member in job.members)
    config, model = job.config, job.config.get("model", {})
    try:
        length = get_task(config["task"]).length(config["gap"])
        gates = cells.get(model["kind"]).gate_count() if model.get("kind") in cells.REGISTRY else 1
        return float(length * (config.get("steps") or 1) * gates)
    except (KeyError, TypeError):
        return 0.0


def sweep_record(scenario, points, earlier: list[RunOutcome] = ()) -> dict:
    return {"scenario": scenario.name, "path": str(scenario.path) if scenario.path else None,
            "description": scenario.description, "settings": scenario.settings,
            "axes": scenario.axes,
            "runs": [{"index": p.index, "key": p.key, "values": dict(p.values)} for p in points]
            + [{"index": None, "key": o.key, "values": dict(o.values), "earlier": True} for o in earlier]}


# ---- aggregation over seeds ----

def grad_at_first_step(record: dict) -> float | None:
    """The carrier's gradient norm at the first time step relative to the answer step, at
    initialisation (dl/dc for the LSTM, dl/dh for the RNN)."""
    gradient = record.get("gradient")
    if not isinstance(gradient, dict):  # a tampered or foreign record
        return None
    value = gradient.get("dc_ratio_first_step_before")
    if value is None:
        value = gradient.get("dh_ratio_first_step_before")
    return _number(value)


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)  # "inf" / "nan" strings from JSON included
    except (TypeError, ValueError, OverflowError):
        return None


def _median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None and not math.isnan(v)]
    return statistics.median(values) if values else None


def aggregate(outcomes: list[RunOutcome], axes: list[str]) -> list[dict]:
    """One row per setting (the axes other than seed), in grid order."""
    from lstm_cli.rundir import FINISHED

    groups: dict[tuple, list[RunOutcome]] = {}
    for outcome in outcomes:
        values = dict(outcome.values)
        groups.setdefault(tuple(_label(values.get(a)) for a in axes), []).append(outcome)
    rows = []
    axes = [short_name(a) for a in axes]
    for setting, members in groups.items():
        records = [o.result for o in members if o.result is not None and o.result.get("status") in FINISHED]
        wins = [r for r in records if r.get("success") is True]
        metric = next((r.get("metric") for r in records if isinstance(r.get("metric"), str) and r.get("metric")),
                      None)
        row = dict(zip(axes, setting))  # axes by their short names (clip for train.clip)
        row.update({
            "runs": len(members),
            "succeeded": len(wins),
            "success_rate": len(wins) / len(members) if members else None,
            "diverged": sum(r.get("status") == "diverged" for r in records),
            "failed": sum(o.failed or o.result is None or o.result.get("status") not in FINISHED
                          for o in members),
            "median_steps_to_success": _median([_number(r.get("steps")) for r in wins]),
            "median_seconds_to_success": _median([_number(r.get("wall_time")) for r in wins]),
            "metric": metric,
            "median_final_metric": _median([_number(r.get(metric)) for r in records]) if metric else None,
            "median_grad_first_step": _median([grad_at_first_step(r) for r in records]),
        })
        rows.append(row)
    return rows


def _label(value: Any) -> str:
    from lstm_cli.scenario import format_value

    try:
        return format_value(value)
    except Exception:  # noqa: BLE001 - a value from a tampered sweep.json: its text at least
        return str(value)


def short_name(key: str) -> str:
    from lstm_cli.scenario import short_name as short

    return short(key)


def write_summary(sweep_dir: Path, summary: list[dict]) -> None:
    """summary.csv and summary.jsonl, each written atomically."""
    import io

    from lstm_cli.plain import write_csv, write_jsonl

    for name, writer in ((SUMMARY_CSV, write_csv), (SUMMARY_JSONL, write_jsonl)):
        buffer = io.StringIO()
        writer(summary, buffer)
        write_sweep_file(sweep_dir, name, buffer.getvalue())
