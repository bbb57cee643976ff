"""``lstm-demo sweep`` / ``run`` / ``scenarios`` end to end, with real (tiny) training runs.

Acceptance 1 (every bundled scenario runs at a reduced size) and 2 (a sweep killed
with SIGINT or SIGKILL completes with --resume, no finished run repeated and no
corrupt record) of issue 5.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lstm_cli import rundir
from lstm_cli.cli import app

runner = CliRunner()

# every bundled scenario shrunk to seconds: one seed, a short gap, a few steps, tiny sets
SHRINK = ["--set", "seed=0", "--set", "model.hidden=4"]
TRAIN_SHRINK = ["--set", "train.steps=4", "--set", "train.eval_every=2", "--set", "train.eval_size=8",
                "--set", "train.probe_size=4", "--set", "train.batch=4"]
REDUCED = {
    "vanishing": ["--set", "gap=8", "--set", "gradients.batch=4"],
    "exploding": ["--set", "gap=8", "--set", "gradients.batch=4", *TRAIN_SHRINK],
    "forget-gate": ["--set", "gap=8", "--set", "gradients.batch=4", *TRAIN_SHRINK],
    "remember-gap": ["--set", "gap=3,6", *TRAIN_SHRINK],
    "adding-100": ["--set", "gap=6", *TRAIN_SHRINK],
    "agreement": ["--set", "gap=5", "--set", "gradients.batch=4", *TRAIN_SHRINK],
    "long-lag": ["--set", "gap=6", *TRAIN_SHRINK],
}
PARTS = {"vanishing": ["gradients"], "exploding": ["gradients", "train"], "forget-gate": ["gradients", "train"],
         "remember-gap": ["train"], "adding-100": ["train"], "agreement": ["gradients", "train"],
         "long-lag": ["train"]}
RUNS = {"vanishing": 2, "exploding": 2, "forget-gate": 2, "remember-gap": 4, "adding-100": 2, "agreement": 2,
        "long-lag": 3}


@pytest.mark.parametrize("name", sorted(REDUCED))
def test_every_bundled_scenario_runs_at_a_reduced_size(name, tmp_path):
    result = runner.invoke(app, ["run", name, *SHRINK, *REDUCED[name], "--format", "json",
                                 "--out", str(tmp_path)])
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    if PARTS[name] == ["gradients"]:
        labels = [m["label"] for m in document["models"]]
        assert labels == ["rnn:hidden=4", "lstm:hidden=4"]
        return
    records = document["train"] if "gradients" in PARTS[name] else document
    records = records if isinstance(records, list) else [records]
    assert len(records) == RUNS[name]
    for record in records:
        assert record["status"] in ("completed", "diverged")
        assert rundir.read_result(record["run_dir"]) == record
        assert Path(record["run_dir"]).parent == tmp_path / name
    if "gradients" in PARTS[name]:
        assert document["gradients"]["settings"]["gap"] == {"exploding": 8, "forget-gate": 8, "agreement": 5}[name]


def test_list_runs_and_run_index_agree(tmp_path):
    listed = runner.invoke(app, ["sweep", "remember-gap", "--list-runs"])
    assert listed.exit_code == 0
    keys = listed.stdout.splitlines()
    assert len(keys) == 50 and keys[0] == "gap=5,model=rnn,seed=0" and keys[-1] == "gap=100,model=lstm,seed=4"
    result = runner.invoke(app, ["run", "remember-gap", "--index", "7", *TRAIN_SHRINK, "--format", "json",
                                 "--out", str(tmp_path)])
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["name"] == keys[7] == "gap=5,model=lstm,seed=2"
    assert (record["gap"], record["model"], record["seed"]) == (5, "lstm", 2)
    assert Path(record["run_dir"]) == tmp_path / "remember-gap" / keys[7]


SMALL = """\
description: a small sweep for the tests
task: {task}
gap: {gap}
model: {{hidden: 8}}
train: {{steps: {steps}, eval_every: 20, eval_size: 32, probe_size: 8, batch: 16}}
sweep:
  model: [rnn, lstm]
  seed: 0..{last_seed}
"""


def small(tmp_path, gap=4, steps=20, last_seed=1, task="remember") -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(SMALL.format(gap=gap, steps=steps, last_seed=last_seed, task=task))
    return path


def test_sweep_summary_records_and_formats(tmp_path):
    path = small(tmp_path)
    out = tmp_path / "runs"
    result = runner.invoke(app, ["sweep", str(path), "--jobs", "2", "--format", "jsonl", "--out", str(out)])
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["type"] for line in lines] == ["run"] * 4 + ["summary"] * 2  # a line per run, then the summary
    rows = [{k: v for k, v in line.items() if k != "type"} for line in lines[4:]]
    assert [(r["model"], r["runs"]) for r in rows] == [("rnn", 2), ("lstm", 2)]
    sweep_dir = out / "small"
    for key in ("model=rnn,seed=0", "model=rnn,seed=1", "model=lstm,seed=0", "model=lstm,seed=1"):
        assert rundir.read_result(sweep_dir / key)["status"] == "completed"
    # the summary is computed from the records: check one row by hand
    lstm = [rundir.read_result(sweep_dir / f"model=lstm,seed={s}") for s in (0, 1)]
    assert rows[1]["succeeded"] == sum(r["success"] for r in lstm)
    assert rows[1]["median_final_metric"] == pytest.approx(sum(r["accuracy"] for r in lstm) / 2)
    assert rows[1]["median_grad_first_step"] == pytest.approx(
        sum(r["gradient"]["dc_ratio_first_step_before"] for r in lstm) / 2)
    assert [json.loads(line) for line in (sweep_dir / "summary.jsonl").read_text().splitlines()] == rows
    assert (sweep_dir / "summary.csv").read_text().splitlines()[0].startswith("model,runs,succeeded,success_rate")
    assert "[4/4]" in result.stderr
    # the same command again runs into a new directory, leaving the first alone; an explicit --name
    # that holds the runs is refused before any work; --resume keeps everything
    before = {p: p.stat().st_mtime_ns for p in sweep_dir.rglob("*")}
    again = runner.invoke(app, ["sweep", str(path), "--out", str(out), "--format", "csv"])
    assert again.exit_code == 0, again.stderr
    assert "summary.jsonl in " + str(out / "small-run2") in again.stderr
    assert rundir.read_result(out / "small-run2" / "model=lstm,seed=1")["status"] == "completed"
    assert {p: p.stat().st_mtime_ns for p in sweep_dir.rglob("*")} == before
    third = runner.invoke(app, ["sweep", str(path), "--out", str(out), "--name", "small"])
    assert third.exit_code == 2 and "pass --resume" in third.stderr and "run(s) to do" not in third.stderr
    resumed = runner.invoke(app, ["sweep", str(path), "--out", str(out), "--resume", "--format", "csv"])
    assert resumed.exit_code == 0 and "0 run(s) to do, 4 kept" in resumed.stderr


def test_a_failed_run_is_reported_and_the_others_go_on(tmp_path):
    path = small(tmp_path)
    out = tmp_path / "runs"
    (out / "small").mkdir(parents=True)
    (out / "small" / "model=rnn,seed=1").write_text("a file where the run directory should be")
    result = runner.invoke(app, ["sweep", str(path), "--jobs", "2", "--format", "jsonl", "--out", str(out)])
    assert result.exit_code == 1
    failed = [line for line in result.stderr.splitlines() if "FAILED" in line]
    assert len(failed) == 1 and "model=rnn,seed=1: FAILED: BadInput: cannot create run directory" in failed[0]
    assert result.stderr.splitlines()[-1].startswith("lstm-demo: error: 1 of 4 runs failed (model=rnn,seed=1)")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["failed"] for r in lines if r["type"] == "summary"] == [1, 0]
    assert [r["status"] for r in lines if r["type"] == "run" and r["key"] == "model=rnn,seed=1"] == ["failed"]
    for key in ("model=rnn,seed=0", "model=lstm,seed=0", "model=lstm,seed=1"):
        assert rundir.read_result(out / "small" / key)["status"] == "completed"


def test_dry_run_lists_runs_and_their_state(tmp_path):
    path = small(tmp_path)
    result = runner.invoke(app, ["sweep", str(path), "--dry-run", "--format", "jsonl", "--out", str(tmp_path)])
    assert result.exit_code == 0
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["index"], r["key"], r["state"]) for r in rows][:2] == [(0, "model=rnn,seed=0", "to run"),
                                                                      (1, "model=rnn,seed=1", "to run")]
    assert not (tmp_path / "small").exists()  # a dry run writes nothing


def test_gradients_only_scenario_cannot_be_swept():
    result = runner.invoke(app, ["sweep", "vanishing"])
    assert result.exit_code == 2
    assert "no train: section" in result.stderr and "lstm-demo run" in result.stderr


# ---- killing a sweep, then --resume ----

def _snapshot(sweep_dir: Path) -> dict[str, tuple]:
    """{key: (status, mtime_ns, bytes)} of every readable result.json."""
    found = {}
    for result in sweep_dir.glob("*/result.json"):
        data = result.read_bytes()
        found[result.parent.name] = (json.loads(data)["status"], result.stat().st_mtime_ns, data)
    return found


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL])
def test_killed_sweep_completes_with_resume(tmp_path, how):
    # 8 runs of about a second (adding does not stop early: MSE < 0.01 takes far longer)
    path = small(tmp_path, gap=20, steps=1500, last_seed=3, task="adding")
    out = tmp_path / "runs"
    sweep_dir = out / "small"
    command = [sys.executable, "-m", "lstm_cli", "sweep", str(path), "--jobs", "2", "--out", str(out)]
    # SIGINT as a terminal's Ctrl-C delivers it, even when pytest itself runs in the background
    # of a script (where the shell starts it, and so the sweep, with SIGINT ignored)
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait for two finished runs, then kill the sweep process
        if sum(s[0] == "completed" for s in _snapshot(sweep_dir).values()) >= 2 if sweep_dir.exists() else False:
            break
        time.sleep(0.05)
    os.kill(proc.pid, how)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == (130 if how == signal.SIGINT else -signal.SIGKILL)
    if how == signal.SIGINT:
        assert stderr.splitlines()[-1].startswith("lstm-demo: error: sweep interrupted") and "--resume" in stderr
    time.sleep(1.0)  # orphaned workers (SIGKILL) notice that their parent is gone within 0.5 s
    before = _snapshot(sweep_dir)
    time.sleep(1.5)  # longer than a run: a worker still alive would change a record meanwhile
    assert _snapshot(sweep_dir) == before, "a worker of the killed sweep is still running"
    finished = {k for k, v in before.items() if v[0] == "completed"}
    assert 2 <= len(finished) < 8, before.keys()
    if how == signal.SIGINT:  # an orderly stop: no file cut short, even before --resume cleans up
        assert not list(sweep_dir.rglob("*.tmp"))
        assert {v[0] for v in before.values()} <= {"completed", "interrupted"}

    resumed = subprocess.run([*command, "--resume", "--format", "jsonl"], capture_output=True, text=True,
                             timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{8 - len(finished)} run(s) to do, {len(finished)} kept" in resumed.stderr
    done_now = {line.split("] ")[1].split(":")[0] for line in resumed.stderr.splitlines() if line.startswith("[")}
    assert done_now.isdisjoint(finished) and len(done_now) == 8 - len(finished)
    after = _snapshot(sweep_dir)
    assert len(after) == 8 and all(v[0] == "completed" for v in after.values())
    for key in finished:  # not run again: the very same bytes, not rewritten
        assert after[key][1:] == before[key][1:]
    rows = [r for r in map(json.loads, resumed.stdout.splitlines()) if r["type"] == "summary"]
    assert [(r["model"], r["runs"], r["failed"]) for r in rows] == [("rnn", 4, 0), ("lstm", 4, 0)]
    for run_dir in sweep_dir.iterdir():
        if run_dir.is_dir():
            assert rundir.read_metrics(run_dir), run_dir  # every record whole and readable
            assert not [p for p in run_dir.iterdir() if p.name.endswith(".tmp")]
