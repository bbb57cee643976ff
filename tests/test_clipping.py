"""Pascanu et al.'s clipping numbers: per evaluation in metrics.jsonl, totals in result.json, a row
in the train table (train.ClipLog, runs._finish, render/train.clipping_text)."""

from __future__ import annotations

import dataclasses
import statistics

import pytest

from lstm_cli import rundir, runs, train
from lstm_cli.errors import Interrupted
from lstm_cli.models import ModelSpec
from lstm_cli.render import train as view
from lstm_cli.train import TrainConfig

# a small LSTM on remember gap 5; clip 0.4 sits inside the range of its gradient norms (0.2-0.9
# with seed 0), so some steps are clipped and some are not
TINY = TrainConfig(task="remember", gap=5, model=ModelSpec(hidden=8), batch=16, steps=30, lr=0.01,
                   clip=0.4, eval_every=10, eval_size=32, probe_size=4, seed=0)


def test_clip_log_by_hand():
    log = train.ClipLog(1.0)
    for n, norm in enumerate([0.5, 2.0, 3.0, 0.8]):
        log.add(train.Step(step=n + 1, loss=1.0, grad_norm=norm, clipped=train.clipped(norm, 1.0)))
    assert log.summary() == {"clip": 1.0, "steps": 4, "clipped_steps": 2, "clipped_fraction": 0.5,
                             "grad_norm_median": 1.4, "grad_norm_max": 3.0}
    assert log.summary(since=2) == {"clip": 1.0, "steps": 2, "clipped_steps": 1, "clipped_fraction": 0.5,
                                    "grad_norm_median": 1.9, "grad_norm_max": 3.0}
    assert log.summary(since=4) == {"clip": 1.0, "steps": 0, "clipped_steps": 0, "clipped_fraction": None,
                                    "grad_norm_median": None, "grad_norm_max": None}


def test_clipped_only_above_a_positive_threshold():
    assert train.clipped(1.5, 1.0) and not train.clipped(1.0, 1.0) and not train.clipped(0.5, 1.0)
    assert not train.clipped(1e9, 0.0)  # clip 0 disables clipping


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    events = []
    record = runs.run_training(TINY, tmp_path_factory.mktemp("runs"), on_event=events.append)
    return record, events


def test_each_evaluation_holds_the_steps_since_the_one_before(run):
    record, events = run
    metrics = rundir.read_metrics(record["run_dir"])
    steps = [e for e in events if isinstance(e, train.Step)]
    assert [e.clipped for e in steps] == [e.grad_norm > 0.4 for e in steps]
    assert 0 < sum(e.clipped for e in steps) < len(steps)  # the threshold cuts through this run
    assert metrics[0]["grad_norm_median"] is None and metrics[0]["clipped_fraction"] is None  # step 0
    for before, row in zip(metrics, metrics[1:]):
        window = [e for e in steps if before["step"] < e.step <= row["step"]]
        norms = [e.grad_norm for e in window]
        assert row["grad_norm_median"] == statistics.median(norms)
        assert row["grad_norm_max"] == max(norms)
        assert row["clipped_fraction"] == sum(e.clipped for e in window) / len(window)


def test_result_holds_the_totals(run):
    record, events = run
    norms = [e.grad_norm for e in events if isinstance(e, train.Step)]
    clipped = sum(n > 0.4 for n in norms)
    assert record["clipping"] == {"clip": 0.4, "steps": record["steps"], "clipped_steps": clipped,
                                  "clipped_fraction": clipped / len(norms),
                                  "grad_norm_median": statistics.median(norms), "grad_norm_max": max(norms)}
    assert len(norms) == record["steps"] == 30


def test_an_interrupted_run_counts_the_steps_it_took(tmp_path):
    def stop_at_12(event):
        if isinstance(event, train.Step) and event.step == 12:
            raise KeyboardInterrupt

    with pytest.raises(Interrupted):
        runs.run_training(TINY, tmp_path, on_event=stop_at_12)
    record = rundir.read_result(tmp_path / runs.default_name(TINY))
    assert record["status"] == "interrupted" and record["clipping"]["steps"] == 12


def test_clip_zero_never_clips_but_keeps_the_norms(tmp_path):
    record = runs.run_training(dataclasses.replace(TINY, clip=0.0, steps=10), tmp_path)
    clipping = record["clipping"]
    assert clipping["clipped_steps"] == 0 and clipping["clipped_fraction"] == 0.0 and clipping["steps"] == 10
    assert clipping["grad_norm_max"] > 0.4


def test_table_row_reads_the_numbers_of_the_record():
    clipping = {"clip": 1.0, "steps": 208, "clipped_steps": 52, "clipped_fraction": 0.25,
                "grad_norm_median": 0.75, "grad_norm_max": 3.5e7}
    assert view.clipping_text(clipping) == ("fired on 52 of 208 updates (25%) at clip 1; "
                                            "pre-clip ||g|| median 7.5e-01, max 3.5e+07")  # norms: one sci style
    off = {**clipping, "clip": 0.0, "clipped_steps": 0, "clipped_fraction": 0.0}
    assert view.clipping_text(off) == "off (clip 0); pre-clip ||g|| median 7.5e-01, max 3.5e+07 over 208 updates"
    assert view.clipping_text({**clipping, "steps": 0}) is None  # nothing trained: no row
    assert view.clipping_text(None) is None  # a record made before clipping was recorded


def test_run_exploding_reports_the_clipped_fraction(tmp_path):
    from typer.testing import CliRunner

    from lstm_cli.cli import app

    result = CliRunner().invoke(app, ["run", "exploding", "--set", "train.steps=20", "--set", "train.eval_size=16",
                                      "--set", "gradients.batch=4", "--set", "train.probe_size=4",
                                      "--out", str(tmp_path)], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.stderr
    clipped = rundir.read_result(tmp_path / "exploding" / "clip=1")["clipping"]
    unclipped = rundir.read_result(tmp_path / "exploding" / "clip=0")["clipping"]
    assert clipped["steps"] == 20 and clipped["clip"] == 1.0 and unclipped["clip"] == 0.0
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines() if line.strip().startswith("clip=")}
    header = next(line.split() for line in result.stdout.splitlines() if "grad first" in line and "clipped" in line)
    assert header[-1] == "clipped"  # over "fraction": the field clipped_fraction
    assert float(rows["clip=1"][-1]) == pytest.approx(clipped["clipped_fraction"], abs=5e-4)  # as in the record
    assert rows["clip=0"][-1] == "-"  # clipping off
