"""The sweep machinery with trivial run functions: worker pool, failures, resume plan, aggregation.

The run functions below live at module level so that spawned workers can import them.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path

import pytest

from lstm_cli import pool, rundir, scenario as scenarios, sweep


def echo_run(job: sweep.Job) -> dict:
    """Succeeds with what the worker saw; fails for keys ending in 'boom'."""
    if job.key.endswith("boom"):
        raise ValueError(f"no good: {job.key}")
    time.sleep(0.05)
    return {"status": "completed", "key": job.key, "pid": os.getpid(),
            "blas": [os.environ.get(name) for name in pool.BLAS_THREADS]}


def dying_run(job: sweep.Job) -> dict:
    """The worker process dies outright on job 1 (as if killed or out of memory)."""
    if job.index == 1:
        os._exit(3)
    return {"status": "completed", "key": job.key}


def jobs_of(keys, config=None):
    return [sweep.Job(i, key, config or {}, "/nonexistent") for i, key in enumerate(keys)]


def test_workers_run_every_job_with_one_blas_thread(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    done = []
    out = pool.run_jobs(jobs_of([f"k{i}" for i in range(6)]), 2, run=echo_run,
                         on_done=lambda job, record, error: done.append(job.key))
    assert sorted(out) == list(range(6))
    records = [out[i][0] for i in range(6)]
    assert [r["key"] for r in records] == [f"k{i}" for i in range(6)]
    assert all(r["blas"] == ["1", "1", "1"] for r in records)
    assert 1 <= len({r["pid"] for r in records}) <= 2  # at most two workers (one may start late)
    assert sorted(done) == sorted(f"k{i}" for i in range(6))
    assert os.environ["OMP_NUM_THREADS"] == "7"  # the parent's environment is restored


def test_a_failure_is_reported_and_the_others_go_on():
    failures = []
    out = pool.run_jobs(jobs_of(["a", "b-boom", "c", "d"]), 2, run=echo_run,
                         on_done=lambda job, record, error: error and failures.append((job.key, error)))
    assert failures == [("b-boom", "ValueError: no good: b-boom")]
    assert out[1] == (None, "ValueError: no good: b-boom")
    assert [out[i][0]["key"] for i in (0, 2, 3)] == ["a", "c", "d"]


def test_a_dead_worker_fails_its_run_only():
    out = pool.run_jobs(jobs_of(["a", "b", "c", "d"]), 2, run=dying_run)
    assert out[1][0] is None and "worker process died (exit code 3)" in out[1][1]
    assert [out[i][0]["key"] for i in (0, 2, 3)] == ["a", "c", "d"]


def test_finished_workers_leave_on_their_own_and_are_not_terminated(monkeypatch):
    # a SIGTERM sent while a finished worker shuts its interpreter down printed a
    # KeyboardInterrupt traceback into the sweep's stderr
    import multiprocessing.context

    terminated = []
    real = multiprocessing.context.SpawnProcess.terminate
    monkeypatch.setattr(multiprocessing.context.SpawnProcess, "terminate",
                        lambda self: (terminated.append(self.pid), real(self)))
    for _ in range(3):
        out = pool.run_jobs(jobs_of(["a", "b", "c"]), 2, run=echo_run)
        assert [out[i][0]["key"] for i in range(3)] == ["a", "b", "c"]
    assert terminated == []


def test_a_sigterm_to_a_leaving_worker_exits_quietly(monkeypatch):
    exits = []
    monkeypatch.setattr(pool.os, "_exit", lambda code: exits.append(code))
    monkeypatch.setattr(pool, "_leaving", False)
    try:  # in a run: stopped as Ctrl-C would, its record says so
        pool._stop(15, None)
        raised = False
    except KeyboardInterrupt:
        raised = True
    assert raised and exits == []
    monkeypatch.setattr(pool, "_leaving", True)
    pool._stop(15, None)  # past its loop: no KeyboardInterrupt to escape into the interpreter's shutdown
    assert exits == [0]


# ---- aggregation ----

def record(success, steps, wall, acc, grad, status="completed"):
    return {"status": status, "success": success, "steps": steps, "wall_time": wall, "metric": "accuracy",
            "accuracy": acc, "gradient": {"dh_ratio_first_step_before": grad, "dc_ratio_first_step_before": None}}


def test_aggregate_over_seeds_by_hand():
    outcomes = [
        sweep.RunOutcome(0, "", (("gap", 5), ("seed", 0)), record(True, 100, 2.0, 1.0, 1e-3)),
        sweep.RunOutcome(1, "", (("gap", 5), ("seed", 1)), record(True, 300, 4.0, 0.99, 1e-5)),
        sweep.RunOutcome(2, "", (("gap", 5), ("seed", 2)), record(False, 1500, 9.0, 0.4, "nan")),
        sweep.RunOutcome(3, "", (("gap", 50), ("seed", 0)), record(False, 10, 1.0, 0.25, 1e-20, "diverged")),
        sweep.RunOutcome(4, "", (("gap", 50), ("seed", 1)), None, error="ValueError: x"),
    ]
    rows = sweep.aggregate(outcomes, ["gap"])
    assert rows[0] == {"gap": "5", "runs": 3, "succeeded": 2, "success_rate": 2 / 3, "diverged": 0, "failed": 0,
                       "median_steps_to_success": 200.0, "median_seconds_to_success": 3.0, "metric": "accuracy",
                       "median_final_metric": 0.99, "median_grad_first_step": statistics.median([1e-3, 1e-5])}
    assert rows[1]["runs"] == 2 and rows[1]["succeeded"] == 0 and rows[1]["success_rate"] == 0
    assert rows[1]["diverged"] == 1 and rows[1]["failed"] == 1
    assert rows[1]["median_steps_to_success"] is None
    assert rows[1]["median_grad_first_step"] == 1e-20


def test_grad_at_first_step_prefers_the_cell_state():
    assert sweep.grad_at_first_step({"gradient": {"dc_ratio_first_step_before": 0.5,
                                                  "dh_ratio_first_step_before": 1e-9}}) == 0.5
    assert sweep.grad_at_first_step({"gradient": {"dc_ratio_first_step_before": None,
                                                  "dh_ratio_first_step_before": "inf"}}) == float("inf")
    assert sweep.grad_at_first_step({}) is None


def test_summary_files_are_written_whole(tmp_path):
    rows = [{"gap": "5", "runs": 2, "median_grad_first_step": float("inf")}, {"gap": "10", "runs": 2}]
    sweep.write_summary(tmp_path, rows)
    lines = (tmp_path / "summary.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [{"gap": "5", "runs": 2, "median_grad_first_step": "inf"},
                                                    {"gap": "10", "runs": 2}]
    assert (tmp_path / "summary.csv").read_text().splitlines()[0] == "gap,runs,median_grad_first_step"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left


# ---- the resume plan ----

SMALL = "train: {steps: 5, eval_every: 5, eval_size: 8, probe_size: 4}\nmodel: {hidden: 4}\ngap: 3\n" \
        "sweep:\n  seed: [0, 1, 2, 3]\n"


def fake_record(run_dir: Path, config: dict, status: str) -> None:
    import yaml

    run_dir.mkdir(parents=True)
    (run_dir / rundir.CONFIG).write_text(yaml.safe_dump(config))
    (run_dir / rundir.RESULT).write_text(json.dumps({"status": status, "success": status == "completed"}))


def test_plan_keeps_finished_runs_with_the_same_settings_only(tmp_path):
    scenario = scenarios.parse(SMALL, "small.yaml", name="small")
    points = scenario.points()
    configs = [p.train_config().resolved().to_dict() for p in points]
    sweep_dir = tmp_path / "small"
    fake_record(sweep_dir / points[0].key, configs[0], "completed")
    fake_record(sweep_dir / points[1].key, configs[1], "running")  # killed mid-run
    fake_record(sweep_dir / points[3].key, configs[3], "diverged")  # a finished outcome
    with pytest.raises(Exception, match="pass --resume"):
        sweep.plan(scenario, tmp_path, resume=False)
    found_dir, found_points, todo, kept = sweep.plan(scenario, tmp_path, resume=True)
    assert found_dir == sweep_dir
    assert sorted(kept) == [0, 3]
    assert [job.key for job in todo] == [points[1].key, points[2].key]
    # a finished run made with other settings is never replaced without a word (issue 22)
    fake_record(sweep_dir / points[2].key, {**configs[2], "lr": 0.123}, "completed")
    for resume in (False, True):
        with pytest.raises(Exception, match=r"other settings: seed=2 \(lr 0.123 -> 0.001\)"):
            sweep.plan(scenario, tmp_path, resume=resume)


def test_run_sweep_with_a_fake_run_resumes(tmp_path):
    scenario = scenarios.parse(SMALL, "small.yaml", name="small")
    first = sweep.run_sweep(scenario, tmp_path, jobs=2, run=echo_run)
    assert first.ran == 4 and not first.failures
    assert (tmp_path / "small" / "summary.csv").exists()
    assert json.loads((tmp_path / "small" / "sweep.json").read_text())["runs"][3]["key"] == "seed=3"
