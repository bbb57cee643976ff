"""Seed-stacked training (lstm_cli/stacked.py): every run's events and record are those of the
same run alone: float64 bit for bit, float32 within tolerance with the same outcome."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from lstm_cli import rundir, runs, seed_stacks, stacked, sweep, train
from lstm_cli.checkpoint import CHECKPOINT
from lstm_cli.files import append_jsonl
from lstm_cli.models import ModelSpec
from lstm_cli.pool import Job
from lstm_cli.train import TrainConfig

TINY = dict(batch=8, eval_every=5, eval_size=16, probe_size=4)


def configs(kind: str, task: str, seeds, model=None, **settings) -> list[TrainConfig]:
    spec = ModelSpec(kind=kind, hidden=settings.pop("hidden", 6), **(model or {}))
    return [TrainConfig(task=task, model=spec, seed=seed, **{**TINY, **settings}) for seed in seeds]


def events_alone(cfgs):
    return [list(train.train(cfg)) for cfg in cfgs]


def events_stacked(cfgs):
    out = [[] for _ in cfgs]
    for index, event in stacked.train_stacked(cfgs):
        out[index].append(event)
    return out


def exact(event) -> tuple:
    """An event as comparable data: floats by their bits, arrays by their bytes."""
    if isinstance(event, train.Evaluation):
        return ("evaluation", json.dumps(event.to_dict()), json.dumps(event.clipping))
    if isinstance(event, train.Finished):
        return ("finished", event.step, event.success,
                [(k, v.dtype.str, v.shape, v.tobytes()) for k, v in event.params.items()])
    if isinstance(event, train.Started):
        return ("started", repr(event.config), event.total_steps)
    return (type(event).__name__, repr(event))


def outcome(events) -> tuple:
    """How a run ended: (Finished or Diverged, at which step, success)."""
    last = events[-1]
    return type(last).__name__, last.step, getattr(last, "success", False)


def assert_identical(cfgs):
    alone, together = events_alone(cfgs), events_stacked(cfgs)
    for cfg, a, b in zip(cfgs, alone, together):
        assert len(a) == len(b), f"seed {cfg.seed}: {len(a)} events alone, {len(b)} stacked"
        for k, (x, y) in enumerate(zip(a, b)):
            assert exact(x) == exact(y), f"seed {cfg.seed}: event {k} ({type(x).__name__}) differs"
    return alone


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("task,gap,steps", [("remember", 3, 12), ("adding", 4, 10)])
def test_float64_bit_for_bit(kind, task, gap, steps):
    assert_identical(configs(kind, task, [0, 1, 2], gap=gap, steps=steps))


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("task,gap", [("copy", 3), ("temporal-order", 6), ("agreement", 3)])
def test_the_other_tasks_bit_for_bit(kind, task, gap):
    # copy: ten answer steps, so the head sends gradients into several steps of the backward pass
    assert_identical(configs(kind, task, [0, 1], gap=gap, steps=4, eval_every=2))


@pytest.mark.parametrize("kind,optimizer,model", [("rnn", "momentum", {"activation": "relu", "init": "identity"}),
                                                   ("lstm", "sgd", {"chrono": 10.0}),
                                                   ("gru", "sgd", {"init": "orthogonal", "recurrent_scale": 1.5})])
def test_other_optimisers_and_inits_bit_for_bit(kind, optimizer, model):
    assert_identical(configs(kind, "remember", [0, 1], gap=3, steps=6, optimizer=optimizer, model=model))


def test_runs_that_stop_at_different_steps_are_frozen_bit_for_bit():
    # remember at gap 2 with a large step: the seeds succeed after different numbers of steps
    cfgs = configs("lstm", "remember", [0, 1, 2, 3], gap=2, steps=150, hidden=8, lr=0.05, batch=16)
    alone = assert_identical(cfgs)
    stops = {outcome(events)[1] for events in alone}
    assert len(stops) >= 2, f"the runs must stop at different steps to test freezing, got {stops}"
    assert all(outcome(events)[2] for events in alone)


def test_a_diverging_run_leaves_the_stack_and_the_others_go_on():
    # a relu RNN at twice the spectral radius with plain SGD and no clipping: seed 1 blows up
    cfgs = configs("rnn", "adding", [0, 1, 2, 3, 4], gap=3, steps=20, optimizer="sgd", lr=1.0, clip=0.0,
                   model={"activation": "relu", "recurrent_scale": 2.0})
    alone = assert_identical(cfgs)
    ends = [outcome(events)[0] for events in alone]
    assert "Diverged" in ends and "Finished" in ends, ends


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_clipping_fires_per_run(kind):
    cfgs = configs(kind, "adding", [0, 1, 2], gap=3, steps=10, clip=0.05, optimizer="momentum", lr=0.01)
    alone = assert_identical(cfgs)
    fired = [e.clipped for events in alone for e in events if isinstance(e, train.Step)]
    assert any(fired), "clipping never fired: the test would not cover it"


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_float32_same_outcome_within_tolerance(kind):
    cfgs = configs(kind, "remember", [0, 1, 2], gap=3, steps=10, model={"dtype": "float32"})
    alone, together = events_alone(cfgs), events_stacked(cfgs)
    for a, b in zip(alone, together):
        assert outcome(a) == outcome(b)
        for x, y in zip(a, b):
            assert type(x) is type(y)
            if isinstance(x, train.Step):
                assert math.isclose(x.loss, y.loss, rel_tol=1e-5) and x.clipped == y.clipped
            elif isinstance(x, train.Evaluation):
                assert x.success == y.success and math.isclose(x.value, y.value, rel_tol=1e-5, abs_tol=1e-6)
            elif isinstance(x, train.Finished):
                for k in x.params:
                    np.testing.assert_allclose(y.params[k], x.params[k], rtol=1e-4, atol=1e-6, err_msg=k)


def test_what_stacks():
    lstm, peephole = configs("lstm", "remember", [0])[0], configs("lstm", "remember", [0], model={"peephole": True})[0]
    assert stacked.stackable(lstm) and not stacked.stackable(peephole)
    assert stacked.group_key(lstm) == stacked.group_key(configs("lstm", "remember", [7])[0])
    assert stacked.group_key(lstm) != stacked.group_key(configs("lstm", "remember", [0], lr=0.01)[0])
    with pytest.raises(ValueError):
        list(stacked.train_stacked([lstm, configs("lstm", "remember", [1], lr=0.01)[0]]))


def _job(index, cfg, tmp_path):
    return Job(index, f"run{index}", cfg.resolved().to_dict(), str(tmp_path))


def test_stacks_join_seeds_and_split_for_the_workers(tmp_path):
    cfgs = configs("lstm", "remember", range(4), steps=5) + configs("rnn", "remember", range(4), steps=5) \
        + configs("lstm", "remember", [0], steps=5, model={"peephole": True})
    jobs = [_job(i, cfg, tmp_path) for i, cfg in enumerate(cfgs)]
    units = seed_stacks.stacks(jobs, workers=1)
    assert sorted(len(seed_stacks.members_of(u)) for u in units) == [1, 4, 4]
    assert sorted(m.index for u in units for m in seed_stacks.members_of(u)) == list(range(9))
    # one stack of 4 and two workers: split in two, so that both cores work
    units = seed_stacks.stacks(jobs[:4], workers=2)
    assert sorted(len(seed_stacks.members_of(u)) for u in units) == [2, 2]


def _comparable(run_dir):
    result = json.loads((run_dir / rundir.RESULT).read_text())
    for key in ("wall_time", "run_dir", "name"):
        result.pop(key)
    metrics = rundir.read_metrics(run_dir)
    for row in metrics:
        row.pop("wall_time")
    with np.load(run_dir / CHECKPOINT) as npz:
        arrays = {k: npz[k].tobytes() for k in npz.files}
    return result, metrics, arrays


def test_a_stack_job_writes_each_record_as_alone(tmp_path):
    cfgs = configs("gru", "remember", [0, 1, 2], gap=2, steps=30, hidden=8, lr=0.05, batch=16)
    jobs = [_job(i, cfg, tmp_path / "stacked") for i, cfg in enumerate(cfgs)]
    (unit,) = seed_stacks.stacks(jobs, workers=1)
    record = sweep.train_job(unit)
    assert set(record.members) == {0, 1, 2}
    for i, cfg in enumerate(cfgs):
        stacked_record, error = record.members[i]
        assert error is None and stacked_record["status"] == "completed"
        runs.run_training(cfg, tmp_path / "alone", name=f"run{i}")
        assert _comparable(tmp_path / "stacked" / f"run{i}") == _comparable(tmp_path / "alone" / f"run{i}")


def test_a_run_kept_from_elsewhere_leaves_the_stack(tmp_path):
    cfgs = configs("rnn", "remember", [0, 1, 2], gap=2, steps=20)
    jobs = [_job(i, cfg, tmp_path / "out") for i, cfg in enumerate(cfgs)]
    before = runs.run_training(cfgs[1], tmp_path / "out", name="run1")  # finished by another process
    (unit,) = seed_stacks.stacks(jobs, workers=1)
    record = sweep.train_job(unit)
    kept, error = record.members[1]
    assert error is None and getattr(kept, "kept", False) and kept == before
    for i in (0, 2):
        runs.run_training(cfgs[i], tmp_path / "alone", name=f"run{i}")
        assert _comparable(tmp_path / "out" / f"run{i}") == _comparable(tmp_path / "alone" / f"run{i}")


def test_an_interrupted_stack_records_every_run_as_interrupted(tmp_path, monkeypatch):
    cfgs = configs("lstm", "remember", [0, 1, 2], gap=2, steps=50)
    jobs = [_job(i, cfg, tmp_path) for i, cfg in enumerate(cfgs)]
    real = stacked.train_stacked

    def ctrl_c_at_step_3(configs, dropped=None):
        for index, event in real(configs, dropped):
            yield index, event
            if isinstance(event, train.Step) and event.step == 3:
                raise KeyboardInterrupt

    monkeypatch.setattr(stacked, "train_stacked", ctrl_c_at_step_3)
    (unit,) = seed_stacks.stacks(jobs, workers=1)
    with pytest.raises(KeyboardInterrupt):
        sweep.train_job(unit)
    statuses = [rundir.read_result(tmp_path / f"run{i}")["status"] for i in range(3)]
    assert statuses == ["interrupted"] * 3


def test_a_failing_stack_fails_the_runs_still_training_and_keeps_the_finished(tmp_path, monkeypatch):
    cfgs = configs("lstm", "remember", [0, 1, 2, 3], gap=2, steps=150, hidden=8, lr=0.05, batch=16)
    jobs = [_job(i, cfg, tmp_path) for i, cfg in enumerate(cfgs)]
    real = stacked.train_stacked

    def broken_at_step_12(configs, dropped=None):
        for index, event in real(configs, dropped):
            if isinstance(event, train.Step) and event.step == 12:
                raise MemoryError("no room\nfor the stack")
            yield index, event

    monkeypatch.setattr(stacked, "train_stacked", broken_at_step_12)
    (unit,) = seed_stacks.stacks(jobs, workers=1)
    record = sweep.train_job(unit)
    statuses = {i: rundir.read_result(tmp_path / f"run{i}")["status"] for i in range(4)}
    assert sorted(statuses.values()) == ["completed", "completed", "failed", "failed"], statuses  # 10 vs 15 steps
    for i, status in statuses.items():
        kept, error = record.members[i]
        if status == "completed":
            assert error is None and kept["steps"] == 10
        else:
            result = rundir.read_result(tmp_path / f"run{i}")
            assert kept is None and "MemoryError: no room for the stack" in error
            assert "MemoryError: no room for the stack" in result["error"] and "\n" not in result["error"]


def test_a_stack_holds_no_more_runs_than_fit_in_memory(tmp_path, monkeypatch):
    from lstm_cli import config as settings
    from lstm_cli.tasks import get_task

    cfgs = configs("lstm", "remember", range(5), steps=5)
    jobs = [_job(i, cfg, tmp_path) for i, cfg in enumerate(cfgs)]
    cfg = cfgs[0]
    one_run = settings.train_bytes("lstm", cfg.model.hidden, get_task("remember").length(cfg.gap),
                                   get_task("remember").input_size, cfg.batch, cfg.eval_size, cfg.probe_size)
    monkeypatch.setenv(settings.MEMORY_ENV, str(int(2.5 * one_run)))
    assert stacked.most_stacked(cfg) == 2
    assert sorted(len(seed_stacks.members_of(u)) for u in seed_stacks.stacks(jobs, workers=1)) == [1, 2, 2]
    monkeypatch.setenv(settings.MEMORY_ENV, str(int(0.5 * one_run)))
    assert stacked.most_stacked(cfg) == 1  # one run always: whether it fits is runs.check_memory's to say


def test_a_run_without_a_gradient_at_a_step_adds_nothing_there():
    # alone, a step where the head sends no gradient is skipped: -0.0 stays -0.0
    has_out = np.array([[True, False, True], [True, True, False]])  # (S=2, T=3)
    assert stacked._receivers(has_out) == [None, [1], [0]]
    total, extra = np.array([[-0.0, 1.0], [-0.0, 1.0]]), np.zeros((2, 2))
    stacked._add_where(total, extra, [1])
    assert np.signbit(total[0, 0]) and not np.signbit(total[1, 0])


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_float32_flushes_each_runs_vanished_gradient_as_alone(kind, monkeypatch):
    # a contracting recurrence over many steps: float32's carried gradient reaches the subnormals,
    # and each run decides by its own gradient when to flush them (subnormal.py)
    from lstm_cli import subnormal

    flushing = []
    real_call = subnormal.SubnormalFlush.__call__

    def watched(self, t, carried, *also):
        real_call(self, t, carried, *also)
        flushing.append(self.flushing)

    monkeypatch.setattr(subnormal.SubnormalFlush, "__call__", watched)
    model = {"dtype": "float32", "init": "orthogonal", "recurrent_scale": 0.05}
    if kind == "lstm":
        model["forget_bias"] = -6.0
    gap = 100 if kind == "gru" else 40  # the GRU's direct path keeps z ~ 0.5 a step: 0.5^100 ~ 1e-30
    cfgs = configs(kind, "remember", [0, 1, 2], gap=gap, steps=4, hidden=4, model=model)
    alone, together = events_alone(cfgs), events_stacked(cfgs)
    assert any(flushing), "no float32 flush happened: the test would not cover it"
    for a, b in zip(alone, together):
        assert [exact(x) for x in a] == [exact(y) for y in b]  # on this platform: the very same bits


def test_sweep_stacked_and_no_stack_write_the_same_records(tmp_path):
    from typer.testing import CliRunner

    from lstm_cli.cli import app

    scenario = tmp_path / "seeds.yaml"
    scenario.write_text("description: seeds stacked or not\ntask: remember\ngap: 2\nmodel: {hidden: 6}\n"
                        "train: {steps: 30, lr: 0.05, eval_every: 5, eval_size: 16, probe_size: 4, batch: 16}\n"
                        "sweep:\n  model: [rnn, lstm, 'lstm:peephole=true']\n  seed: 0..2\n")
    outputs = {}
    for flag in ("--stack", "--no-stack"):
        result = CliRunner().invoke(app, ["sweep", str(scenario), "--jobs", "1", flag, "--format", "jsonl",
                                          "--out", str(tmp_path / flag)])
        assert result.exit_code == 0, result.stderr
        assert result.stderr.count("\n[") + result.stderr.startswith("[") == 9, result.stderr  # a line per run
        outputs[flag] = tmp_path / flag / "seeds"
    keys = sorted(p.name for p in outputs["--stack"].iterdir() if p.is_dir())
    assert len(keys) == 9
    steps = set()
    for key in keys:
        stacked_run, alone = (_comparable(outputs[flag] / key) for flag in ("--stack", "--no-stack"))
        assert stacked_run == alone, key
        steps.add(stacked_run[0]["steps"])
    assert len(steps) >= 2, steps  # the runs stopped at different steps


def test_a_stack_whose_first_run_fails_returns_that_runs_record_and_the_others(tmp_path, monkeypatch):
    cfgs = configs("rnn", "remember", [0, 1], gap=2, steps=10)
    jobs = [_job(i, cfg, tmp_path) for i, cfg in enumerate(cfgs)]
    real_append = append_jsonl

    def disk_full_for_run0(path, row):
        if Path(path).parent.name == "run0" and row["step"] > 0:
            raise OSError(28, "No space left on device", str(path))
        real_append(path, row)

    monkeypatch.setattr(runs, "append_jsonl", disk_full_for_run0)
    (unit,) = seed_stacks.stacks(jobs, workers=1)
    record = sweep.train_job(unit)
    failed, error = record.members[0]
    assert failed is None and "No space left on device" in error
    assert dict(record) == rundir.read_result(tmp_path / "run0") and record["status"] == "failed"
    assert record.members[1][1] is None and record.members[1][0]["status"] == "completed"
