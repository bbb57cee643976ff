"""Run a sweep's jobs on a Dask cluster: the executor behind ``lstm-demo sweep --scheduler``.

The contract is the local pool's (``pool.Executor``): jobs in (longest first),
``{index: (record or None, error or None)}`` out, ``on_start(job)`` when a run
starts and ``on_done(job, record, error)`` when it ends, in the calling thread.

    local:N            a LocalCluster on 127.0.0.1: N worker processes of one thread,
                       no dashboard; started here and shut down afterwards
    tcp://HOST:PORT    a running ``dask scheduler`` (any Dask address)
    scheduler file     ``dask scheduler --scheduler-file PATH`` wrote it (``scheduler_file=``)

Records are written by the workers, into the run directories the client
names (made absolute here, since a remote worker's working directory is not
ours). On a cluster ``--out`` must therefore be a filesystem that the client
and every worker see at the same path. The client checks that every record
arrived: a run whose result.json the client cannot read back, identical to
what the worker returned, has failed.

Failures, one run at a time:

- a run that raises is that run's failure (the message names the exception);
- a worker that cannot write into ``--out`` fails that run with the path;
- a run that kills its worker process (os._exit, out of memory) is retried
  by Dask on other workers up to ``distributed.scheduler.allowed-failures``
  times (3 by default), then fails alone with ``KilledWorker``; the runs that
  shared its worker are retried and complete;
- losing the scheduler ends the sweep with ``RunFailed``; the records
  written so far stay, and ``--resume`` (with or without Dask) continues.

BLAS: Dask's nanny starts every worker process with OMP_NUM_THREADS,
OPENBLAS_NUM_THREADS and MKL_NUM_THREADS = 1 (``distributed.nanny.pre-spawn-environ``);
a ``local:N`` cluster also inherits them from here, as the local pool's workers do.

``distributed`` is imported only inside these functions: ``lstm-demo --help``,
``gradients``, ``train`` and a plain ``sweep`` never load Dask.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import os
import queue
import re
import socket
import uuid
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Callable

from lstm_cli.errors import BadInput, RunFailed
from lstm_cli.pool import BLAS_THREADS, Executor, Job

INSTALL_HINT = 'pip install "lstm-demo[dask]" (in a checkout: pip install -e ".[dask]")'
LOCAL_PREFIX = "local:"
POLL_SECONDS = 0.5
# A worker holds only the run it is doing: by default (saturation 1.1) a one-thread worker also
# holds the next one, and a run that kills its worker would count a death against that one too.
ONE_RUN_PER_WORKER = {"distributed.scheduler.worker-saturation": 1.0}
# Dask starts its workers with MALLOC_TRIM_THRESHOLD_=65536: glibc then returns every freed
# array to the OS and a training step, which allocates the same arrays again, ran 1.8x slower
# (lstm-demo train, adding gap 40, 300 steps: 10.3 s against 5.6 s). Workers of local:N get
# the C library's default, as the local pool's do.
DEFAULT_MALLOC = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
# A worker's own housekeeping takes the GIL from the run it is doing: the statistical profiler
# samples every thread's stack each 10 ms, the event loop ticks every 20 ms, and the worker and
# its nanny poll the system and memory every 0.5 s and 0.1 s. On local:2 (bench_sweep.py, 16
# runs, idle 2-core machine) the runs' summed training time was 56 s against 50 s in the local
# pool; with these it is 50 s. Nothing of ours reads the profiles or the tick.
QUIET_WORKERS = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.worker.memory.monitor-interval": "1s",
}
ARRIVAL_SECONDS = 10.0  # how long the client waits at the end for records that a worker wrote


def check_available() -> None:
    """BadInput naming the extra when ``distributed`` is not installed."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise BadInput(f"--scheduler needs Dask, which is not installed: {INSTALL_HINT}") from None


MAX_LOCAL_WORKERS = 64  # local:N starts 2N processes (a worker and its nanny each) on this machine
HANDSHAKE_SECONDS = 5.0  # a Dask scheduler greets a new connection at once; silence this long is not one
MAX_GREETING_BYTES = 1 << 20  # its greeting is a few hundred bytes; "HTTP/1.1" read as a length is 3 EiB
SCHEDULER_FILE_BYTES = 1 << 20  # the file dask writes holds a few hundred bytes of JSON
_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?")


def local_workers(address: str) -> int | None:
    """N of ``local:N``; None for any other address; BadInput for a bad N (not ASCII digits,
    below 1, or more than MAX_LOCAL_WORKERS)."""
    if not address.startswith(LOCAL_PREFIX):
        return None
    text = address[len(LOCAL_PREFIX):]
    # str.isdigit() accepts "²" and "٣", which int() refuses or reads as another number
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_LOCAL_WORKERS:
        raise BadInput(f"--scheduler {_short(address)}: expected local:N with N >= 1 worker processes (at most "
                       f"{MAX_LOCAL_WORKERS}, in ASCII digits), e.g. local:2")
    return int(text)


def parse_tcp(address: str, option: str) -> tuple[str, int]:
    """(host, port) of ``tcp://HOST:PORT`` (HOST a name, an IPv4 address or [IPv6]); BadInput for
    anything else: another protocol, no host, a port that is not 1-65535, a host with spaces."""
    scheme, sep, rest = address.partition("://")
    if not sep:
        raise BadInput(f"{option}: expected local:N or a Dask scheduler address such as tcp://HOST:PORT")
    if scheme != "tcp":
        raise BadInput(f"{option}: only tcp:// scheduler addresses are supported, not {_short(scheme)}:// "
                       f"(tls, ucx and inproc need settings this command does not take)")
    if rest.startswith("["):
        host, close, port = rest[1:].partition("]")
        if not close or not port.startswith(":"):
            raise BadInput(f"{option}: expected tcp://[IPv6]:PORT")
        port = port[1:]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise BadInput(f"{option}: {_short(host)!r} is not an IPv6 address") from None
    else:
        host, colon, port = rest.rpartition(":")
        if not colon:
            raise BadInput(f"{option}: expected tcp://HOST:PORT (the port is missing)")
        if not host or len(host) > 253 or not _HOST.fullmatch(host):
            raise BadInput(f"{option}: {_short(host)!r} is not a host name or address")
    if not (port.isascii() and port.isdigit()) or not 1 <= int(port) <= 65535:
        raise BadInput(f"{option}: the port must be a number from 1 to 65535, not {_short(port)!r}")
    return host, int(port)


def _short(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


def check_target(address: str | None, scheduler_file: str | None) -> str:
    """The address to connect to (``local:N`` as given), or BadInput, before anything is planned or started."""
    if (address is None) == (scheduler_file is None):
        raise BadInput("give exactly one of --scheduler ADDRESS and --scheduler-file PATH")
    option = f"--scheduler {_short(address)}" if address else f"--scheduler-file {scheduler_file}"
    if address is not None and local_workers(address) is not None:
        check_available()
        return address
    if scheduler_file is not None:
        address = _address_in(scheduler_file)
        option = f"--scheduler-file {scheduler_file} (address {_short(address)})"
    host, port = parse_tcp(address, option)
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as err:
        raise BadInput(f"{option}: cannot resolve the host {_short(host)!r}: "
                       f"{getattr(err, 'strerror', None) or err}") from None
    check_available()
    return address


def _address_in(scheduler_file: str) -> str:
    """The scheduler's address from the JSON file that ``dask scheduler --scheduler-file`` writes
    (read by the one bounded reader: a FIFO, a device or a huge file is refused at once)."""
    import json

    from lstm_cli.files import file_problem, read_regular

    option = f"--scheduler-file {scheduler_file}"
    try:
        data = json.loads(read_regular(Path(scheduler_file), SCHEDULER_FILE_BYTES))
    except FileNotFoundError:
        raise BadInput(f"{option}: no such file (dask scheduler --scheduler-file PATH writes it)") from None
    except (OSError, ValueError) as err:
        problem = file_problem(Path(scheduler_file), err) if isinstance(err, OSError) or not isinstance(
            err, (json.JSONDecodeError, UnicodeDecodeError)) else f"not JSON: {_one_line(err)}"
        raise BadInput(f"{option}: not a Dask scheduler file: {problem}") from None
    except RecursionError:
        raise BadInput(f"{option}: not a Dask scheduler file: JSON nested beyond reason") from None
    address = data.get("address") if isinstance(data, dict) else None
    if not isinstance(address, str):
        raise BadInput(f'{option}: not a Dask scheduler file (no "address")')
    return address


def greet(address: str, option: str, seconds: float | None = None) -> None:
    """RunFailed in one line unless something at ``address`` answers as a Dask scheduler does:
    it greets a new connection at once with a length-prefixed message. A port that accepts and
    stays silent (a web server, the dashboard) would otherwise hang the sweep forever, and one
    that sends other bytes would make Dask allocate exabytes."""
    import struct

    seconds = HANDSHAKE_SECONDS if seconds is None else seconds
    host, port = parse_tcp(address, option)
    try:
        with socket.create_connection((host, port), timeout=seconds) as conn:
            conn.settimeout(seconds)
            head = b""
            while len(head) < 8:
                chunk = conn.recv(8 - len(head))
                if not chunk:
                    raise RunFailed(f"{option}: the connection was closed without a greeting: not a Dask "
                                    f"scheduler")
                head += chunk
    except socket.timeout:
        raise RunFailed(f"{option}: no answer within {seconds:g} s of connecting: not a Dask scheduler (a web "
                        f"server or the dashboard port?)") from None
    except OSError as err:
        raise RunFailed(f"{option}: cannot reach the Dask scheduler: {err.strerror or _one_line(err)}") from None
    (length,) = struct.unpack("<Q", head)
    if not 0 < length <= MAX_GREETING_BYTES:
        raise RunFailed(f"{option}: it answered {head!r}: not a Dask scheduler (it greets with the length "
                        f"of its handshake)")


@contextmanager
def connect(address: str | None, scheduler_file: str | None = None, runs_to_do: int | None = None):
    """A distributed.Client for the target; a ``local:N`` cluster lives as long as the client and
    has no more workers than ``runs_to_do`` (an idle worker would only cost two processes)."""
    option = f"--scheduler {_short(address)}" if address else f"--scheduler-file {scheduler_file}"
    address = check_target(address, scheduler_file)
    n_workers = local_workers(address)
    if n_workers is None:
        greet(address, option)
    elif runs_to_do is not None:
        n_workers = max(1, min(n_workers, runs_to_do))
    import dask
    from distributed import Client, LocalCluster

    with ExitStack() as stack:
        if n_workers is not None:
            stack.enter_context(_blas_pinned())  # inherited by the spawned worker processes
            stack.enter_context(dask.config.set({**ONE_RUN_PER_WORKER, **DEFAULT_MALLOC, **QUIET_WORKERS}))
            address = stack.enter_context(LocalCluster(
                n_workers=n_workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                dashboard_address=None, silence_logs=logging.CRITICAL))
        try:
            client = stack.enter_context(Client(address, timeout=HANDSHAKE_SECONDS * 2))
        except (OSError, TimeoutError) as err:
            raise RunFailed(f"{option}: cannot reach the Dask scheduler: {_one_line(err)}") from None
        except (MemoryError, ValueError, TypeError) as err:  # garbled answers from something else
            raise RunFailed(f"{option}: not a Dask scheduler ({type(err).__name__}: {_one_line(err)[:120]})") from None
        yield client


@contextmanager
def _blas_pinned():
    saved = {name: os.environ.get(name) for name in BLAS_THREADS}
    os.environ.update({name: "1" for name in BLAS_THREADS})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def _quiet_dask():
    """Dask's own log lines (worker restarts, lost keys) would break the one-line-per-event stderr;
    what they report reaches the user as a run's failure instead."""
    loggers = [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)
               if name == "distributed" or name.startswith("distributed.")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


# ---- the worker side ----

def run_on_worker(run: Callable[[Job], dict], job: Job, topic: str) -> tuple[str, object]:
    """Runs in a Dask worker: ("done", record) or ("failed", message); announces the start."""
    from distributed import get_worker

    from lstm_cli.process import no_warnings

    get_worker().log_event(topic, job.index)
    run_dir = Path(job.sweep_dir) / job.key
    try:
        with no_warnings():  # as in the local pool: overflow is reported as numbers, never as warnings
            return "done", run(job)
    except OSError as err:
        where = err.filename or run_dir
        return "failed", (f"cannot write the run record: {where}: {err.strerror or _one_line(err)} "
                          f"(on {socket.gethostname()}; --out must be a directory every worker can write)")
    except Exception as err:  # reported for this run only; the worker goes on
        return "failed", f"{type(err).__name__}: {_one_line(err) or type(err).__name__}"


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())


# ---- the client side ----

def executor(address: str | None = None, scheduler_file: str | None = None) -> Executor:
    """The executor (pool.py's interface) for a Dask scheduler: ``local:N``, an address such as
    tcp://HOST:PORT, or the file ``dask scheduler --scheduler-file`` wrote. Checked now (BadInput)."""
    target = check_target(address, scheduler_file)
    if local_workers(target) is None:  # before anything is planned or written: is it a scheduler at all?
        greet(target, f"--scheduler {_short(address)}" if address else f"--scheduler-file {scheduler_file}")
    return functools.partial(run_jobs, address=address, scheduler_file=scheduler_file)


def run_jobs(jobs: list[Job], workers: int | None, run: Callable[[Job], dict],
             on_start: Callable[[Job], None] | None = None,
             on_done: Callable[[Job, dict | None, str | None], None] | None = None,
             *, address: str | None = None, scheduler_file: str | None = None) -> dict[int, tuple]:
    """Run ``jobs`` on the Dask cluster at ``address`` (or ``scheduler_file``); {index: (record, error)}.

    ``workers`` is the local pool's and is not used: the cluster's workers run the jobs.
    ``jobs`` are started in the order given (the sweep sorts them longest first). ``run``
    must be importable by the workers. On KeyboardInterrupt the jobs are cancelled and it
    is re-raised; a lost scheduler raises RunFailed.
    """
    target = check_target(address, scheduler_file)
    outcomes: dict[int, tuple] = {}
    if not jobs:
        return outcomes
    # a remote worker's working directory is not ours: name every run directory absolutely
    jobs = [replace(job, sweep_dir=os.path.abspath(job.sweep_dir)) for job in jobs]
    by_index = {job.index: job for job in jobs}
    with _quiet_dask(), connect(address, scheduler_file, len(jobs)) as client:
        where = address or f"{target} (from {scheduler_file})"
        topic = f"lstm-demo-{uuid.uuid4().hex}"  # this sweep's run starts; also its task keys
        starts: queue.SimpleQueue = queue.SimpleQueue()
        client.subscribe_topic(topic, lambda event: starts.put(event[1]))
        futures = {}
        for rank, job in enumerate(jobs):
            future = client.submit(run_on_worker, run, job, topic, key=f"{topic}-{job.index}",
                                   priority=len(jobs) - rank, pure=False)
            futures[future] = job
        started: set[int] = set()

        def start(index: int) -> None:
            if index not in started and index not in outcomes:
                started.add(index)
                if on_start:
                    on_start(by_index[index])

        def finish(job: Job, record, error) -> None:
            start(job.index)
            outcomes[job.index] = (record, error)
            if on_done:
                on_done(job, record, error)

        unseen: list[tuple[Job, dict]] = []  # done, but the record is not (yet) visible here
        try:
            while futures:
                finished = sum(by_index[i].runs for i in outcomes) + sum(job.runs for job, _ in unseen)
                done = _wait_some(client, futures, where, finished, sum(job.runs for job in jobs))
                while not starts.empty():
                    start(starts.get())
                for future in done:
                    job = futures.pop(future)  # dropping the future frees its result on the worker
                    event, payload = _result_of(future)
                    if event == "done" and not _arrived(job, payload):
                        unseen.append((job, payload))
                    elif event == "done":
                        finish(job, payload, None)
                    else:
                        finish(job, None, payload)
        except KeyboardInterrupt:
            client.cancel(list(futures))
            raise
        for job, record in _wait_for_records(unseen):
            finish(job, record, None if record is not None else
                   f"its record did not arrive in {Path(job.sweep_dir) / job.key}: the worker wrote it "
                   f"elsewhere; --out must be a filesystem shared by this machine and every worker")
    return outcomes


def _wait_some(client, futures: dict, where: str, finished: int, total: int) -> list:
    """The futures that finished within POLL_SECONDS; RunFailed when the scheduler is gone."""
    from distributed import wait
    from distributed.client import FuturesCancelledError

    try:
        done, _ = wait(list(futures), timeout=POLL_SECONDS, return_when="FIRST_COMPLETED")
    except TimeoutError:
        done = []
    except FuturesCancelledError:
        done = None
    if done is None or client.status not in ("running", "connecting") or any(
            future.status == "cancelled" for future in futures):
        raise RunFailed(f"lost the Dask scheduler at {where} after {finished} of {total} runs; the records "
                        f"written so far stay: run the same command with --resume (with or without "
                        f"--scheduler) to finish the sweep")
    return list(done)


def _result_of(future) -> tuple[str, object]:
    from distributed import KilledWorker

    if future.status == "finished":
        return future.result()
    error = future.exception()
    if isinstance(error, KilledWorker):
        return "failed", "worker process died (KilledWorker: every Dask worker that tried this run died)"
    return "failed", f"{type(error).__name__}: {_one_line(error) or type(error).__name__}"


def _arrived(job: Job, record: dict) -> bool:
    from lstm_cli import rundir

    return rundir.read_result(Path(job.sweep_dir) / job.key) == record


def _wait_for_records(unseen: list[tuple[Job, dict]]) -> list[tuple[Job, dict | None]]:
    """Give a shared filesystem's caches ARRIVAL_SECONDS to show the missing records."""
    import time

    deadline = time.monotonic() + ARRIVAL_SECONDS
    while unseen and time.monotonic() < deadline and not all(_arrived(j, r) for j, r in unseen):
        time.sleep(POLL_SECONDS)
    return [(job, record if _arrived(job, record) else None) for job, record in unseen]
