"""``lstm-demo sweep --scheduler``: the Dask executor (lstm_cli.pool_dask), with tiny real runs.

Acceptance 1 and 2 of issue 13: records equal to ``--jobs 1``'s, a run that kills
its worker fails alone, ``--resume`` after a killed sweep, an external ``dask
scheduler`` and ``dask worker``. Every address is on 127.0.0.1. The whole file is
skipped when Dask is not installed (``pip install -e ".[dask]"``).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml
import pytest
from typer.testing import CliRunner

distributed = pytest.importorskip("distributed")

from lstm_cli import pool, pool_dask, rundir, scenario as scenarios, sweep  # noqa: E402
from lstm_cli.files import atomic_write_text
from lstm_cli.cli import app  # noqa: E402
from lstm_cli.errors import RunFailed  # noqa: E402
from test_cli_sweep import _snapshot, small  # noqa: E402

runner = CliRunner()
TIME_FIELDS = ("wall_time", "median_seconds_to_success")
DASK_BIN = Path(sys.executable).parent / "dask"


@pytest.fixture(scope="module")
def cluster():
    """The address of one ``local:2`` cluster for the tests that connect by address, as to an
    external scheduler. Started from a client whose OMP_NUM_THREADS is 7 (its workers must use
    1); a run whose worker dies is given up after 2 deaths, not Dask's default 4, to save time."""
    import dask

    saved = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "7"
    try:
        with dask.config.set({"distributed.scheduler.allowed-failures": 1}), \
                pool_dask.connect("local:2") as client:
            yield client.scheduler_info()["address"]
        assert os.environ["OMP_NUM_THREADS"] == "7"  # 1 for the workers, and restored afterwards
    finally:
        if saved is None:
            os.environ.pop("OMP_NUM_THREADS")
        else:
            os.environ["OMP_NUM_THREADS"] = saved


def without_time(text: str) -> str:
    return re.sub(r'"(%s)": [^,}\n]+' % "|".join(TIME_FIELDS), r'"\1": TIME', text)


def record_files(sweep_dir: Path) -> dict[str, object]:
    """Every file under ``sweep_dir``: its bytes with the time fields masked (checkpoints: the
    arrays' names, dtypes, shapes and bytes, since a zip stores its write time)."""
    files: dict[str, object] = {}
    for path in sorted(p for p in sweep_dir.rglob("*") if p.is_file() and p.suffix != ".lock"):
        name = str(path.relative_to(sweep_dir))
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                files[name] = {k: (data[k].dtype.str, data[k].shape, data[k].tobytes()) for k in data.files}
        elif path.name == sweep.SUMMARY_CSV:
            rows = list(csv.DictReader(io.StringIO(path.read_text())))
            files[name] = [{k: ("TIME" if k in TIME_FIELDS else v) for k, v in row.items()} for row in rows]
        elif path.name == "config.yaml":  # where, when and by which process: provenance differs
            config = yaml.safe_load(path.read_text())
            config.pop("provenance", None)
            files[name] = config
        else:
            files[name] = without_time(path.read_text())
    return files


def exit_on_one(job: sweep.Job) -> dict:
    """Kills its worker process on the run model=lstm,seed=0 (as the kernel's OOM killer would)."""
    if job.key == "model=lstm,seed=0":
        os._exit(3)
    return sweep.train_job(job)


def blas_run(job: sweep.Job) -> dict:
    """A record of what the worker's environment says about BLAS threads."""
    run_dir = Path(job.sweep_dir) / job.key
    run_dir.mkdir(parents=True)
    record = {"status": "completed", "key": job.key, "blas": [os.environ.get(n) for n in pool.BLAS_THREADS]}
    atomic_write_text(run_dir / rundir.RESULT, json.dumps(record))
    return record


def test_records_equal_those_of_jobs_1(tmp_path):
    path = small(tmp_path, last_seed=2)  # 6 runs
    out = tmp_path / "runs"
    reference = runner.invoke(app, ["sweep", str(path), "--jobs", "1", "--format", "jsonl", "--out", str(out)])
    assert reference.exit_code == 0, reference.stderr
    expected = record_files(out / "small")
    (out / "small").rename(tmp_path / "reference")  # the same --out again: run_dir fields match

    result = runner.invoke(app, ["sweep", str(path), "--scheduler", "local:2", "--format", "jsonl",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.stderr
    assert "6 run(s) to do, Dask scheduler local:2" in result.stderr and "[6/6]" in result.stderr
    # run lines stream in the order the runs finish, which differs between executors
    assert sorted(without_time(result.stdout).splitlines()) == sorted(without_time(reference.stdout).splitlines())
    got = record_files(out / "small")
    assert len(got) == 6 * 4 + 3  # config, metrics, result, checkpoint per run; sweep.json, 2 summaries
    assert got == expected


def test_local_workers_pin_blas_and_every_run_is_started_then_done(cluster, tmp_path):
    jobs = [sweep.Job(i, f"run{i}", {}, str(tmp_path)) for i in range(4)]
    events = []
    out = pool_dask.run_jobs(jobs, None, blas_run, address=cluster,
                             on_start=lambda job: events.append(("start", job.index)),
                             on_done=lambda job, record, error: events.append(("done", job.index, error)))
    assert sorted(out) == [0, 1, 2, 3]
    assert all(error is None and record["blas"] == ["1", "1", "1"] for record, error in out.values()), out
    for i in range(4):
        assert events.index(("start", i)) < events.index(("done", i, None))
    assert len(events) == 8


def test_a_run_that_kills_its_worker_fails_alone(cluster, tmp_path):
    scenario = scenarios.load(small(tmp_path))  # 4 runs
    executor = pool_dask.executor(cluster)
    result = sweep.run_sweep(scenario, tmp_path / "runs", executor=executor, run=exit_on_one)
    assert [o.key for o in result.failures] == ["model=lstm,seed=0"]
    assert "KilledWorker" in result.failures[0].error
    for outcome in result.outcomes:
        if not outcome.failed:
            assert rundir.read_result(tmp_path / "runs" / "small" / outcome.key) == outcome.result
            assert outcome.result["status"] == "completed"
    assert [row["failed"] for row in result.summary] == [0, 1]


def test_a_run_that_raises_or_cannot_write_fails_alone(cluster, tmp_path):
    path = small(tmp_path)
    out = tmp_path / "runs"
    (out / "small").mkdir(parents=True)
    blocked = out / "small" / "model=rnn,seed=1"
    blocked.write_text("a file where the run directory should be")
    result = runner.invoke(app, ["sweep", str(path), "--scheduler", cluster,
                                 "--format", "jsonl", "--out", str(out)])
    assert result.exit_code == 1
    failed = [line for line in result.stderr.splitlines() if "FAILED" in line]
    assert len(failed) == 1 and f"cannot create run directory {blocked}" in failed[0]
    assert result.stderr.splitlines()[-1].startswith("lstm-demo: error: 1 of 4 runs failed (model=rnn,seed=1)")
    for key in ("model=rnn,seed=0", "model=lstm,seed=0", "model=lstm,seed=1"):
        assert rundir.read_result(out / "small" / key)["status"] == "completed"


def test_a_record_written_where_the_client_cannot_see_it_fails(cluster, tmp_path, monkeypatch):
    """A worker whose --out is not the client's (no shared filesystem): the client says so."""
    monkeypatch.setattr(pool_dask, "ARRIVAL_SECONDS", 1.0)
    jobs = [sweep.Job(0, "elsewhere", {}, str(tmp_path))]
    out = pool_dask.run_jobs(jobs, None, record_elsewhere, address=cluster)
    record, error = out[0]
    assert record is None and f"did not arrive in {tmp_path / 'elsewhere'}" in error and "shared" in error


def record_elsewhere(job: sweep.Job) -> dict:
    return {"status": "completed", "key": job.key}


def test_resume_after_a_killed_sweep_runs_only_the_rest(cluster, tmp_path):
    path = small(tmp_path, gap=20, steps=300, last_seed=2, task="adding")  # 6 runs of ~0.3 s
    out = tmp_path / "runs"
    sweep_dir = out / "small"
    # each run its own unit of work (--no-stack): a stack in flight, like a run, ends on its worker,
    # and stacks of 3 seeds on 2 workers would leave nothing queued to drop
    command = [sys.executable, "-m", "lstm_cli", "sweep", str(path), "--scheduler", cluster,
               "--out", str(out), "--no-stack"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not (
            sweep_dir.exists() and sum(s[0] == "completed" for s in _snapshot(sweep_dir).values()) >= 2):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    while any(s[0] == "running" for s in _snapshot(sweep_dir).values()):  # a run in flight still ends
        time.sleep(0.1)  # on its worker (Dask cannot stop a running task); the queued ones are dropped
    before = _snapshot(sweep_dir)
    time.sleep(1.0)
    assert _snapshot(sweep_dir) == before, "a run of the killed sweep is still going"
    finished = {k for k, v in before.items() if v[0] == "completed"}
    assert 2 <= len(finished) < 6, before

    resumed = runner.invoke(app, [*command[3:], "--resume", "--format", "jsonl"])
    assert resumed.exit_code == 0, resumed.stderr
    assert f"{6 - len(finished)} run(s) to do, {len(finished)} kept" in resumed.stderr
    after = _snapshot(sweep_dir)
    assert len(after) == 6 and all(v[0] == "completed" for v in after.values())
    for key in finished:  # not run again: the very same bytes, not rewritten
        assert after[key][1:] == before[key][1:]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_external_scheduler_and_worker_processes(tmp_path):
    """dask scheduler + dask worker as subprocesses on 127.0.0.1; then the scheduler is lost."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    scheduler_file = tmp_path / "scheduler.json"
    scheduler = subprocess.Popen([str(DASK_BIN), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                  "--no-dashboard", "--scheduler-file", str(scheduler_file)], **quiet)
    worker = None
    try:
        worker = subprocess.Popen([str(DASK_BIN), "worker", address, "--nthreads", "1", "--nworkers", "1",
                                   "--host", "127.0.0.1", "--no-dashboard"], **quiet)
        with distributed.Client(address, timeout=60, set_as_default=False) as client:
            client.wait_for_workers(1, timeout=60)
        path = small(tmp_path)
        result = runner.invoke(app, ["sweep", str(path), "--scheduler", address, "--format", "jsonl",
                                     "--out", str(tmp_path / "runs")])
        assert result.exit_code == 0, result.stderr
        assert "[4/4]" in result.stderr
        assert [(r["model"], r["runs"], r["failed"]) for r in map(json.loads, result.stdout.splitlines())
            if r["type"] == "summary"] == [
            ("rnn", 2, 0), ("lstm", 2, 0)]

        # the scheduler dies after the first run of another sweep: RunFailed, and --resume finishes
        other = tmp_path / "lost"
        other.mkdir()
        scenario = scenarios.load(small(other))

        def kill_scheduler(job, record, error):
            scheduler.kill()

        executor = pool_dask.executor(scheduler_file=str(scheduler_file))  # as --scheduler-file
        with pytest.raises(RunFailed, match=f"lost the Dask scheduler at {address} .* after .* of 4 runs"
                                            f".*--resume"):
            sweep.run_sweep(scenario, other / "runs", executor=executor, on_done=kill_scheduler)
        worker.kill()
        worker.wait(timeout=30)
        kept = sum(s[0] == "completed" for s in _snapshot(other / "runs" / "small").values())
        assert kept >= 1
        resumed = runner.invoke(app, ["sweep", str(other / "small.yaml"), "--resume", "--jobs", "1",
                                      "--out", str(other / "runs")])
        assert resumed.exit_code == 0, resumed.stderr
        assert f"{4 - kept} run(s) to do, {kept} kept" in resumed.stderr
    finally:
        for proc in (worker, scheduler):
            if proc is not None:
                proc.kill()
                proc.wait(timeout=30)
