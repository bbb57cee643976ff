"""The local worker pool: jobs in, outcomes out.

The executor interface (``Executor``), which another executor (e.g. a Dask one in
its own module) implements to run a sweep elsewhere::

    executor(jobs: list[Job], workers: int, run: Callable[[Job], dict],
             on_start: Callable[[Job], None] | None = None,
             on_done: Callable[[Job, dict | None, str | None], None] | None = None)
        -> dict[int, tuple[dict | None, str | None]]   # job.index -> (record, error)

- ``run(job)`` is the work of one job (a module-level function, so it can be sent
  to another process); it writes the job's record itself and returns it.
- Every job gets exactly one outcome: ``(record, None)``, or ``(None, error)``
  when ``run`` raised or its worker died. A failure does not stop the others.
- ``on_start`` is called when a job starts (where known), ``on_done`` once per
  job as it finishes, both in the calling process.
- On KeyboardInterrupt the workers are stopped and the interrupt is re-raised.
- ``run`` may return a ``runs.KeptRecord`` (a run another process finished with the
  same settings): the sweep counts it as kept, not run.

``run_jobs`` is the local one. Workers are processes of the ``spawn`` start
method, started with OMP_NUM_THREADS / OPENBLAS_NUM_THREADS / MKL_NUM_THREADS = 1
in their environment (before numpy loads BLAS), so N workers use N cores and do
not fight over them. Workers ignore SIGINT (Ctrl-C reaches the whole process
group): on Ctrl-C the parent stops them with SIGTERM, which each turns into an
orderly stop (its run recorded as "interrupted", no file cut short in the
middle of a write). A worker that outlives its parent (the sweep was killed
with SIGKILL) stops itself the same way instead of racing a resumed sweep for
the same run. A worker that dies (killed, out of memory) fails only the job it was on,
where ``ProcessPoolExecutor`` would fail every job still queued.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
import threading
import time
from dataclasses import dataclass
from typing import Callable, Protocol

from lstm_cli import process

BLAS_THREADS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass(frozen=True)
class Job:
    """One run to do: where its record goes and the config to train (``TrainConfig.to_dict``);
    or a seed stack (``seed_stacks.stacks``): the runs in ``members``, trained together as one unit
    of work, whose index, key and config are its first run's."""

    index: int
    key: str
    config: dict
    sweep_dir: str
    members: tuple = ()  # a seed stack's runs (Jobs); () for one run

    @property
    def runs(self) -> int:
        """How many runs this job trains."""
        return len(self.members) or 1


class Executor(Protocol):
    """Runs jobs and returns {job.index: (record or None, error or None)}; see the module docstring."""

    def __call__(self, jobs: list[Job], workers: int, run: Callable[[Job], dict],
                 on_start: Callable[[Job], None] | None = None,
                 on_done: Callable[[Job, dict | None, str | None], None] | None = None) -> dict[int, tuple]:
        ...


def _watch_parent(parent_pid: int) -> None:
    """Stop when the sweep process is gone (SIGKILL leaves its workers orphaned): SIGTERM to
    itself records the run as interrupted (``_stop``); a worker stuck for 5 s more just exits."""
    while True:
        if os.getppid() != parent_pid:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
            os._exit(1)
        time.sleep(0.5)


_leaving = False  # set once a worker has left its loop: nothing more to record or write


def _stop(signum, frame) -> None:
    """A worker's SIGTERM: stop the run as Ctrl-C would (its record says "interrupted"), so a
    worker is never cut off in the middle of writing a file. A worker already on its way out
    just exits: a KeyboardInterrupt raised inside the interpreter's shutdown would print a
    traceback to the sweep's stderr."""
    if not _leaving:
        raise KeyboardInterrupt
    os._exit(0)


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
    global _leaving
    from lstm_cli.errors import Interrupted

    import warnings

    warnings.simplefilter("ignore")  # as in the command line's boundary: numbers, not RuntimeWarnings
    process.reuse_freed_memory()  # this process only trains, as the commands that train do
    for name in BLAS_THREADS:
        os.environ[name] = "1"
    try:  # the handlers inside the try: a SIGTERM right after _stop is installed is an orderly stop too
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides, and stops its workers with SIGTERM
        signal.signal(signal.SIGTERM, _stop)
        threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()
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
                if process.interrupted_inside(err):  # stopped inside an import, which wrapped it
                    return
                message = " ".join(str(err).split()) or type(err).__name__
                results.put(("failed", job.index, f"{type(err).__name__}: {message}"))
    except KeyboardInterrupt:
        return
    finally:
        _leaving = True


# ---- the parent side ----

def run_jobs(jobs: list[Job], workers: int, run: Callable[[Job], dict],
             on_start: Callable[[Job], None] | None = None,
             on_done: Callable[[Job, dict | None, str | None], None] | None = None) -> dict[int, tuple]:
    """Run ``jobs`` in ``workers`` spawned processes; {index: (record or None, error or None)}.

    ``run`` must be importable by the workers (a module-level function). Failures
    do not stop the others. On KeyboardInterrupt the workers are sent SIGTERM, which each
    turns into an orderly stop, and it is re-raised; a worker still there 5 s later is killed.
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
        if len(outcomes) == len(jobs):  # every job has its outcome and every worker its stop sentinel: let them leave
            deadline = time.monotonic() + 5
            for proc in procs:
                proc.join(timeout=max(0.0, deadline - time.monotonic()))
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
    event, index, payload = message
    job = by_index[index]
    if event == "start":
        running[payload] = index
        if on_start:
            on_start(job)
        return
    for pid, i in list(running.items()):
        if i == index:
            del running[pid]
    outcomes[index] = (payload, None) if event == "done" else (None, payload)
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
