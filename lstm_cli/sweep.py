"""Sweeps: run a scenario's grid in worker processes, resume it, aggregate over seeds.

    <out>/<scenario>/
        sweep.json              the scenario, its axes and every run's key and config
        <key>/                  one run record per grid point (``runs.run_training``),
                                e.g. gap=50,model=lstm,seed=3/result.json
        summary.csv             the aggregate over seeds, one row per setting
        summary.jsonl

Workers are processes of the ``spawn`` start method, started with
OMP_NUM_THREADS / OPENBLAS_NUM_THREADS / MKL_NUM_THREADS = 1 in their
environment (before numpy loads BLAS), so N workers use N cores and do not
fight over them. Workers ignore SIGINT: on Ctrl-C the parent stops them with
SIGTERM, which each turns into an orderly stop (its run recorded as
"interrupted", no file cut short). A worker that outlives its parent (the
sweep was killed with SIGKILL) stops the same way on its own instead of racing
a resumed sweep for the same run.

Resume: a run whose result.json says it finished ("completed", or "diverged":
a diverged run is a deterministic outcome, running it again gives the same
NaN) *with the same configuration* is kept; anything else ("running" from a
killed sweep, "interrupted", "failed", no record) is run again from scratch.
Every file is written atomically, so a kill leaves either the old or the new
record, never half of one.

Two sweeps into one ``--out`` at once: each run directory has a lock
(``runs.locked``) that its writer holds. A worker that finds a run locked by
another process waits for it (its sweep says so on stderr) and then keeps the
record when it finished with the same settings (its progress line says
"kept: finished by another process"), so every run is done once. A
run that is being written elsewhere is not counted as an existing record
when the sweep is planned. The sweep's own files (sweep.json, the summaries)
are written under the lock of the sweep directory.

A run that raises is a *failure*: it is reported on stderr when it happens,
the other runs go on, and the sweep's exit code is 1. A run that diverges is
an *outcome* (not successful, counted in the summary's ``diverged`` column).
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import queue
import signal
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from lstm_cli.errors import BadInput, Interrupted, RunFailed

BLAS_THREADS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
SWEEP_FILE, SUMMARY_CSV, SUMMARY_JSONL = "sweep.json", "summary.csv", "summary.jsonl"


@dataclass(frozen=True)
class Job:
    """One run to do: where its record goes and the config to train (``TrainConfig.to_dict``)."""

    index: int
    key: str
    config: dict
    sweep_dir: str


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


# ---- the worker side ----

def train_job(job: Job) -> dict:
    """The default run function: train ``job.config`` into ``sweep_dir/key``.

    A record that another process is writing is waited for, then kept when it finished with
    the same settings (a ``runs.KeptRecord``, which the progress line names); any other
    record there is replaced (the plan already refused existing records unless --resume
    was given)."""
    from lstm_cli import runs
    from lstm_cli.train import TrainConfig

    return runs.run_training(TrainConfig.from_dict(job.config), Path(job.sweep_dir), name=job.key,
                             existing="resume", wait=True)


def _watch_parent(parent_pid: int) -> None:
    """Stop when the sweep process is gone (SIGKILL leaves its workers orphaned): SIGTERM to
    itself records the run as interrupted (``_stop``); a worker stuck for 5 s more just exits."""
    while True:
        if os.getppid() != parent_pid:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
            os._exit(1)
        time.sleep(0.5)


def _stop(signum, frame) -> None:
    """A worker's SIGTERM: stop the run as Ctrl-C would (its record says "interrupted"), so a
    worker is never cut off in the middle of writing a file."""
    raise KeyboardInterrupt


class _Results:
    """Messages from the workers: a pipe written synchronously under a lock (a Queue's feeder
    thread would lose the last messages of a worker that dies with os._exit or SIGKILL)."""

    def __init__(self, ctx):
        self.reader, self.writer = ctx.Pipe(duplex=False)
        self.lock = ctx.Lock()

    def put(self, message) -> None:
        with self.lock:
            self.writer.send(message)

    def get(self, timeout: float):
        if not self.reader.poll(timeout):
            raise queue.Empty
        return self.reader.recv()

    def get_nowait(self):
        return self.get(0)


def _worker(jobs, results, current, slot: int, run: Callable[[Job], dict], parent_pid: int) -> None:
    for name in BLAS_THREADS:
        os.environ[name] = "1"
    # Ctrl-C reaches the whole process group; the parent alone decides, and stops its workers
    # with SIGTERM, which they turn into an orderly stop
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _stop)
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()
    try:
        while True:
            job = jobs.get()
            if job is None:
                return
            # shared memory, written at once: the parent knows the job even if this process dies
            # before the queue's feeder thread sends the "start" message
            current[slot] = job.index
            results.put(("start", job.index, os.getpid()))
            try:
                record = run(job)
                results.put(("done", job.index, record))
            except (KeyboardInterrupt, Interrupted):  # stopped by the parent: its record says so
                return
            except BaseException as err:  # reported by the parent; this worker goes on
                message = " ".join(str(err).split()) or type(err).__name__
                results.put(("failed", job.index, f"{type(err).__name__}: {message}"))
    except KeyboardInterrupt:
        return


# ---- the parent side ----

def run_jobs(jobs: list[Job], workers: int, run: Callable[[Job], dict] = train_job,
             on_start: Callable[[Job], None] | None = None,
             on_done: Callable[[Job, dict | None, str | None], None] | None = None) -> dict[int, tuple]:
    """Run ``jobs`` in ``workers`` spawned processes; {index: (record or None, error or None)}.

    ``run`` must be importable by the workers (a module-level function). Failures
    do not stop the others. On KeyboardInterrupt the workers are sent SIGTERM, which each
    turns into an orderly stop (its run recorded as interrupted, no file cut short), and
    it is re-raised; a worker that has not stopped 5 s later is killed.
    """
    outcomes: dict[int, tuple] = {}
    if not jobs:
        return outcomes
    by_index = {job.index: job for job in jobs}
    ctx = mp.get_context("spawn")
    saved = {name: os.environ.get(name) for name in BLAS_THREADS}
    os.environ.update({name: "1" for name in BLAS_THREADS})  # inherited by the spawned workers
    job_queue, result_queue = ctx.Queue(), _Results(ctx)
    for job in jobs:
        job_queue.put(job)
    n_workers = max(1, min(workers, len(jobs)))
    current = ctx.Array("i", [-1] * n_workers, lock=False)  # the job index each worker is on
    procs = []
    try:
        for slot in range(n_workers):
            job_queue.put(None)
            proc = ctx.Process(target=_worker, args=(job_queue, result_queue, current, slot, run, os.getpid()),
                               daemon=True)
            proc.start()
            procs.append(proc)
        running: dict[int, int] = {}  # worker pid -> job index
        while len(outcomes) < len(jobs):
            try:
                message = result_queue.get(timeout=0.5)
            except queue.Empty:
                _drain(result_queue, running, outcomes, by_index, on_start, on_done)
                _reap_dead(procs, current, outcomes, by_index, on_done)
                if all(not p.is_alive() for p in procs) and len(outcomes) < len(jobs):
                    _drain(result_queue, running, outcomes, by_index, on_start, on_done)
                    for job in jobs:  # every worker is gone: what is left cannot run
                        if job.index not in outcomes:
                            outcomes[job.index] = (None, "not run: every worker process exited")
                            if on_done:
                                on_done(job, None, outcomes[job.index][1])
                continue
            _handle(message, running, outcomes, by_index, on_start, on_done)
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return outcomes


def _handle(message, running, outcomes, by_index, on_start, on_done) -> None:
    kind, index, payload = message
    job = by_index[index]
    if kind == "start":
        running[payload] = index
        if on_start:
            on_start(job)
        return
    for pid, i in list(running.items()):
        if i == index:
            del running[pid]
    outcomes[index] = (payload, None) if kind == "done" else (None, payload)
    if on_done:
        on_done(job, *outcomes[index])


def _drain(result_queue, running, outcomes, by_index, on_start, on_done) -> None:
    while True:
        try:
            _handle(result_queue.get_nowait(), running, outcomes, by_index, on_start, on_done)
        except queue.Empty:
            return


def _reap_dead(procs, current, outcomes, by_index, on_done) -> None:
    """A worker that died (killed, out of memory) fails the run it was doing."""
    for slot, proc in enumerate(procs):
        index = current[slot]
        if proc.exitcode not in (None, 0) and index >= 0:
            current[slot] = -1
            if index not in outcomes:
                outcomes[index] = (None, f"worker process died (exit code {proc.exitcode})")
                if on_done:
                    on_done(by_index[index], None, outcomes[index][1])


# ---- a sweep of a scenario ----

def sweep_dir_of(scenario, out: Path) -> Path:
    """OUT/<scenario name>; the name must be one plain directory name (no "..", no "/")."""
    from lstm_cli.runs import check_name

    check_name(scenario.name, "scenario name")
    return Path(out) / scenario.name


def plan(scenario, out: Path, resume: bool) -> tuple[Path, list, list[Job], dict[int, dict]]:
    """(sweep dir, points, jobs to run, {index: kept result}) without running anything.

    A record that another process is writing now (its lock is held) is neither kept nor
    stale: its job waits for that writer (``train_job``)."""
    from lstm_cli import runs

    points = scenario.points()
    sweep_dir = sweep_dir_of(scenario, out)
    configs = {}
    for point in points:  # every run must be possible before any starts
        runs.check_name(point.key, "run key")
        config = point.train_config().resolved()
        runs.check_memory(config)
        configs[point.index] = config.to_dict()
    kept: dict[int, dict] = {}
    stale = []
    for point in points:
        run_dir = sweep_dir / point.key
        record = runs.finished_record(run_dir, configs[point.index])
        if record is not None:
            kept[point.index] = record
        elif runs.has_record(run_dir) and not runs.is_locked(run_dir):
            stale.append(point.key)
    if (kept or stale) and not resume:
        raise BadInput(f"{sweep_dir} already holds {len(kept) + len(stale)} run record(s) of this sweep; "
                       f"pass --resume to keep the finished ones, or choose another --out")
    jobs = [Job(p.index, p.key, configs[p.index], str(sweep_dir)) for p in points if p.index not in kept]
    return sweep_dir, points, jobs, kept


def run_sweep(scenario, out: Path, jobs: int | None = None, resume: bool = False,
              run: Callable[[Job], dict] = train_job, on_plan=None, on_start=None,
              on_done=None) -> SweepResult:
    """Run every point of ``scenario`` not already finished; write and return the summary."""
    if "train" not in scenario.parts:
        raise BadInput(f"{scenario.name} has no train: section; a sweep trains models "
                       f"(use `lstm-demo run {scenario.name}` for a gradients-only scenario)")
    from lstm_cli import runs

    start = time.perf_counter()
    sweep_dir, points, todo, kept = plan(scenario, out, resume)
    runs.make_directory(sweep_dir, "sweep directory")
    write_sweep_file(sweep_dir, SWEEP_FILE, json.dumps(sweep_record(scenario, points), indent=2))
    for index in kept:  # temporaries a killed writer left beside a finished record
        run_dir = sweep_dir / points[index].key
        try:
            with runs.locked(run_dir):
                runs.remove_stray_temporaries(run_dir)
        except BadInput:  # another process holds it: it cleans up itself
            pass
    if on_plan:
        on_plan(todo, kept)
    workers = jobs or os.cpu_count() or 1
    # longest first, so that no worker is left alone with the slowest run at the end
    done = run_jobs(sorted(todo, key=estimated_cost, reverse=True), workers, run=run,
                    on_start=on_start, on_done=on_done)
    outcomes = []
    for point in points:
        if point.index in kept:
            outcomes.append(RunOutcome(point.index, point.key, point.values, kept[point.index], skipped=True))
        else:
            record, error = done[point.index]
            outcomes.append(RunOutcome(point.index, point.key, point.values, record, error,
                                       skipped=bool(getattr(record, "kept", False))))
    axes = [a for a in scenario.axes if a != "seed"]
    summary = aggregate(outcomes, axes)
    axes = [short_name(a) for a in axes]
    write_summary(sweep_dir, summary)
    skipped = sum(o.skipped for o in outcomes)
    return SweepResult(sweep_dir=sweep_dir, outcomes=outcomes, summary=summary, axes=axes,
                       wall_time=time.perf_counter() - start, ran=len(outcomes) - skipped, skipped=skipped,
                       failures=[o for o in outcomes if o.failed])


def write_sweep_file(sweep_dir: Path, name: str, text: str) -> None:
    """Write one of the sweep's own files atomically, under the sweep directory's lock (another
    sweep into the same directory may be writing it too); stray temporaries go first."""
    from lstm_cli import runs

    try:
        with runs.locked(sweep_dir, wait=True):
            runs.remove_stray_temporaries(sweep_dir)
            runs.atomic_write_text(sweep_dir / name, text)
    except OSError as err:
        raise RunFailed(f"cannot write {sweep_dir / name}: {err.strerror}") from None


def estimated_cost(job: Job) -> float:
    """A rough bound of a run's work: sequence length x step budget x gates (LSTM 4, RNN 1)."""
    from lstm_cli.tasks import get_task

    config, model = job.config, job.config.get("model", {})
    try:
        length = get_task(config["task"]).length(config["gap"])
        gates = 4 if model.get("kind") == "lstm" else 1
        return float(length * (config.get("steps") or 1) * gates)
    except (KeyError, TypeError):
        return 0.0


def sweep_record(scenario, points) -> dict:
    return {"scenario": scenario.name, "path": str(scenario.path) if scenario.path else None,
            "description": scenario.description, "settings": scenario.settings,
            "axes": scenario.axes,
            "runs": [{"index": p.index, "key": p.key, "values": dict(p.values)} for p in points]}


# ---- aggregation over seeds ----

def grad_at_first_step(record: dict) -> float | None:
    """The carrier's gradient norm at the first time step relative to the answer step, at
    initialisation (dl/dc for the LSTM, dl/dh for the RNN)."""
    gradient = record.get("gradient") or {}
    value = gradient.get("dc_ratio_first_step_before")
    if value is None:
        value = gradient.get("dh_ratio_first_step_before")
    return _number(value)


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)  # "inf" / "nan" strings from JSON included
    except (TypeError, ValueError):
        return None


def _median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None and not math.isnan(v)]
    return statistics.median(values) if values else None


def aggregate(outcomes: list[RunOutcome], axes: list[str]) -> list[dict]:
    """One row per setting (the axes other than seed), in grid order."""
    from lstm_cli.runs import FINISHED

    groups: dict[tuple, list[RunOutcome]] = {}
    for outcome in outcomes:
        values = dict(outcome.values)
        groups.setdefault(tuple(_label(values.get(a)) for a in axes), []).append(outcome)
    rows = []
    axes = [short_name(a) for a in axes]
    for setting, members in groups.items():
        records = [o.result for o in members if o.result is not None and o.result.get("status") in FINISHED]
        wins = [r for r in records if r.get("success")]
        metric = next((r.get("metric") for r in records if r.get("metric")), None)
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

    return format_value(value)


def short_name(key: str) -> str:
    from lstm_cli.scenario import short_name as short

    return short(key)


def write_summary(sweep_dir: Path, summary: list[dict]) -> None:
    """summary.csv and summary.jsonl, each written atomically."""
    import io

    from lstm_cli.render import write_csv, write_jsonl

    for name, writer in ((SUMMARY_CSV, write_csv), (SUMMARY_JSONL, write_jsonl)):
        buffer = io.StringIO()
        writer(summary, buffer)
        write_sweep_file(sweep_dir, name, buffer.getvalue())
