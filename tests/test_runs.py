"""Run records on disk (lstm_cli/runs.py): files, statuses, atomic writes, checkpoints."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
import yaml

from lstm_cli import api, models, rundir, runs, train, __version__
from lstm_cli.checkpoint import CHECKPOINT, load_checkpoint, save_checkpoint
from lstm_cli.files import Busy, append_jsonl, atomic_write_text, check_name, is_locked, locked, remove_stray_temporaries
from lstm_cli.errors import BadInput, Interrupted, RunFailed
from lstm_cli.models import ModelSpec
from lstm_cli.tasks import get_task
from lstm_cli.train import TrainConfig

TINY = TrainConfig(task="remember", gap=5, model=ModelSpec(hidden=8), batch=32, steps=200, lr=0.01,
                   eval_every=10, eval_size=64, probe_size=8, seed=0)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    events = []
    record = runs.run_training(TINY, out, on_event=events.append)
    return out, record, events


def test_default_name_from_task_gap_model_seed():
    assert runs.default_name(TINY) == "remember-gap5-lstm-hidden8-seed0"
    rnn = dataclasses.replace(TINY, model=ModelSpec(kind="rnn", recurrent_scale=3.0), seed=2)
    assert runs.default_name(rnn) == "remember-gap5-rnn-recurrent_scale3-seed2"


def test_tiny_run_record_files(tiny_run):
    out, record, events = tiny_run
    run_dir = out / "remember-gap5-lstm-hidden8-seed0"
    assert record["run_dir"] == str(run_dir)
    assert sorted(p.name for p in run_dir.iterdir()) == ["checkpoint.npz", "config.yaml", "metrics.jsonl",
                                                         "result.json"]  # no temporary files left
    assert record["status"] == "completed" and record["success"] is True
    assert record["accuracy"] >= 0.99 and record["steps"] < 200 and record["max_steps"] == 200
    assert record["wall_time"] > 0
    assert json.loads((run_dir / "result.json").read_text()) == record
    assert rundir.read_result(run_dir) == record

    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["version"] == __version__ and config["seed"] == 0
    assert config["lr"] == 0.01 and config["steps"] == 200 and config["clip"] == 1.0
    assert config["model"]["forget_bias"] == 3.0 and config["model"]["hidden"] == 8
    assert TrainConfig.from_dict({k: config[k] for k in TrainConfig.__dataclass_fields__}) == TINY.resolved()

    metrics = rundir.read_metrics(run_dir)
    evaluations = [e for e in events if isinstance(e, train.Evaluation)]
    assert [m["step"] for m in metrics] == [e.step for e in evaluations] == list(range(0, record["steps"] + 1, 10))
    assert metrics[-1]["accuracy"] == record["accuracy"]
    grad = record["gradient"]
    assert grad["dh_rel_before"] == metrics[0]["dh_rel"] and grad["dh_rel"] == metrics[-1]["dh_rel"]
    assert grad["dh_ratio_first_step"] == metrics[-1]["dh_rel"][-1]
    assert grad["steps_back_first_step"] == get_task("remember").length(5) - 1


def test_checkpoint_round_trip_and_predictions(tiny_run):
    out, record, events = tiny_run
    finished = events[-1]
    checkpoint = load_checkpoint(Path(record["run_dir"]))
    assert checkpoint.spec == TINY.model and checkpoint.config == TINY.resolved()
    assert set(checkpoint.params) == set(finished.params)
    for k, v in finished.params.items():
        np.testing.assert_array_equal(checkpoint.params[k], v, err_msg=k)
    with np.load(Path(record["run_dir"]) / CHECKPOINT, allow_pickle=False) as data:
        assert {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "head.weight", "head.bias"} <= set(data)


def test_load_checkpoint_missing_or_unreadable(tmp_path):
    with pytest.raises(BadInput, match="no checkpoint"):
        load_checkpoint(tmp_path)
    (tmp_path / CHECKPOINT).write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(BadInput, match="cannot read checkpoint"):
        load_checkpoint(tmp_path)


def test_save_checkpoint_of_an_rnn_without_config(tmp_path):
    spec = ModelSpec(kind="rnn", hidden=3)
    params = models.init_params(spec, 2, 1, np.random.default_rng(0))
    save_checkpoint(tmp_path / "c.npz", spec, params)
    checkpoint = load_checkpoint(tmp_path / "c.npz")
    assert checkpoint.spec == spec and checkpoint.config is None
    np.testing.assert_array_equal(checkpoint.params["weight_hh"], params["weight_hh"])


def test_diverged_run_is_recorded(tmp_path):
    cfg = TrainConfig(task="adding", gap=10, model=ModelSpec(hidden=8), batch=16, steps=100, optimizer="sgd",
                      lr=1e6, clip=0.0, eval_every=50, eval_size=16, probe_size=4)
    record = runs.run_training(cfg, tmp_path, name="boom")
    assert record["status"] == "diverged" and record["success"] is False
    assert record["diverged_at"] >= 1 and record["steps"] == record["diverged_at"]  # one step count
    assert rundir.read_result(tmp_path / "boom") == record
    assert not (tmp_path / "boom" / CHECKPOINT).exists()


def test_ctrl_c_records_interrupted_and_raises(tmp_path):
    def press_ctrl_c(event):
        if isinstance(event, train.Step) and event.step == 3:
            raise KeyboardInterrupt

    with pytest.raises(Interrupted) as info:
        runs.run_training(TINY, tmp_path, name="stopped", on_event=press_ctrl_c)
    assert info.value.exit_code == 130
    record = rundir.read_result(tmp_path / "stopped")
    assert record["status"] == "interrupted" and record["steps"] == 3 and record["success"] is False
    assert len(rundir.read_metrics(tmp_path / "stopped")) == 1  # the evaluation at step 0


def test_running_status_is_written_first(tmp_path):
    seen = {}

    def look(event):
        if isinstance(event, train.Started):
            seen["status"] = rundir.read_result(tmp_path / "r")["status"]
            seen["config"] = (tmp_path / "r" / rundir.CONFIG).exists()
            raise KeyboardInterrupt

    with pytest.raises(Interrupted):
        runs.run_training(TINY, tmp_path, name="r", on_event=look)
    assert seen == {"status": "running", "config": True}


def test_atomic_write_leaves_old_file_when_writing_fails(tmp_path, monkeypatch):
    target = tmp_path / "result.json"
    atomic_write_text(target, "old")

    def crash(fd):  # the process dies after writing part of the new file, before the rename
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(target, "new and longer")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]  # the temporary file is gone


def test_read_metrics_ignores_a_torn_last_line(tmp_path):
    append_jsonl(tmp_path / rundir.METRICS, {"step": 0})
    append_jsonl(tmp_path / rundir.METRICS, {"step": 10, "x": float("inf")})
    with open(tmp_path / rundir.METRICS, "a") as f:
        f.write('{"step": 2')
    assert rundir.read_metrics(tmp_path) == [{"step": 0}, {"step": 10, "x": "inf"}]
    assert rundir.read_result(tmp_path) is None


def test_bad_run_name(tmp_path):
    with pytest.raises(BadInput, match="run name"):
        runs.run_training(TINY, tmp_path, name="a/b")


def test_checkpoint_loads_into_torch_and_predicts_the_same(tiny_run):
    torch = pytest.importorskip("torch")
    out, record, _ = tiny_run
    run_dir = Path(record["run_dir"])
    checkpoint = load_checkpoint(run_dir)
    H = checkpoint.spec.hidden
    task = get_task("remember")
    lstm = torch.nn.LSTM(task.input_size, H, batch_first=True, dtype=torch.float64)
    head = torch.nn.Linear(H, task.output_size, dtype=torch.float64)
    with np.load(run_dir / CHECKPOINT, allow_pickle=False) as data:
        state = {k: torch.from_numpy(data[k]) for k in data.files if k not in ("model", "config")}
    lstm.load_state_dict({k: v for k, v in state.items() if not k.startswith("head.")})
    head.load_state_dict({k[len("head."):]: v for k, v in state.items() if k.startswith("head.")})
    x, y = task.generate(np.random.default_rng(7), 16, 5)
    ours, _ = models.forward(checkpoint.params, x, spec=checkpoint.spec)  # (B, 1, K)
    with torch.no_grad():
        h, _ = lstm(torch.from_numpy(x))
        theirs = head(h[:, -1]).numpy()
    np.testing.assert_allclose(ours[:, 0], theirs, rtol=1e-10, atol=1e-12)
    assert (theirs.argmax(-1) == y[:, 0]).mean() >= 0.9  # the trained model, not a fresh one


def test_probe_checkpoint_repeats_the_last_evaluation_of_the_run(tiny_run):
    out, record, _ = tiny_run
    run_dir = Path(record["run_dir"])
    profile, settings = api.probe_checkpoint(run_dir)
    last = rundir.read_metrics(run_dir)[-1]
    assert last["step"] == record["steps"]  # the run ended on an evaluation of the saved parameters
    # same parameters, same probe batch (the run's seed and probe size): the very same numbers
    assert profile.dh.rel.tolist() == last["dh_rel"]
    assert profile.dc.rel.tolist() == last["dc_rel"]
    assert settings == {"task": "remember", "gap": 5, "sequence_length": 7, "batch": TINY.probe_size,
                        "seed": 0, "from": str(run_dir)}
    longer, settings = api.probe_checkpoint(run_dir, gap=9, batch=3)
    assert longer.steps_back[-1] == 10 and longer.batch == 3 and settings["gap"] == 9
    with pytest.raises(BadInput, match="not made for task adding"):
        api.probe_checkpoint(run_dir, task="adding")


# ---- the record store under hostile conditions (issue 10) ----

def test_write_all_retries_short_writes_and_refuses_none(tmp_path, monkeypatch):
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, bytes(data[:3])))
    atomic_write_text(tmp_path / "f", "a line longer than three bytes\n")
    assert (tmp_path / "f").read_text() == "a line longer than three bytes\n"
    monkeypatch.setattr(os, "write", lambda fd, data: 0)
    with pytest.raises(OSError):
        append_jsonl(tmp_path / "m.jsonl", {"step": 1})


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_record_files_get_the_umasks_mode(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "a.json", "{}")
        append_jsonl(tmp_path / "m.jsonl", {"step": 0})
    finally:
        os.umask(old)
    assert {stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()} == {mode}


def test_a_second_holder_of_the_lock_is_refused_with_the_pid(tmp_path):
    with locked(tmp_path / "r"):
        assert is_locked(tmp_path / "r")
        with pytest.raises(Busy, match=f"pid {os.getpid()}"):
            with locked(tmp_path / "r"):
                pass
    assert not is_locked(tmp_path / "r")
    with locked(tmp_path / "r"):  # released when the first holder left
        pass


def test_stray_temporaries_are_removed_and_nothing_else(tmp_path):
    for name in (".result.json.123.ab.tmp", ".config.yaml.9.cd.tmp", "result.json", "keep.tmp", ".hidden"):
        (tmp_path / name).write_text("x")
    assert sorted(remove_stray_temporaries(tmp_path)) == [".config.yaml.9.cd.tmp", ".result.json.123.ab.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".hidden", "keep.tmp", "result.json"]


def test_existing_records_refused_replaced_or_kept(tmp_path, tiny_run):
    out, record, _ = tiny_run
    name = Path(record["run_dir"]).name
    with pytest.raises(BadInput, match="already holds a run record; pass --overwrite"):
        runs.run_training(TINY, out, name=name)
    kept = runs.run_training(TINY, out, name=name, existing="resume")
    assert isinstance(kept, runs.KeptRecord) and kept == record  # the same settings, finished: kept
    assert rundir.finished_record(Path(record["run_dir"]), TINY.resolved().to_dict()) == record
    other = dataclasses.replace(TINY, seed=1)
    assert rundir.finished_record(Path(record["run_dir"]), other.resolved().to_dict()) is None


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "a\\b", "x\ny", "\x7f", "n" * 250, "\udcff"])
def test_check_name_refuses_what_is_not_one_directory_name(name):
    with pytest.raises(BadInput, match="bad run name"):
        check_name(name)


def test_a_run_that_raises_is_recorded_failed(tmp_path, monkeypatch):
    def boom(config, params=None):
        yield train.Started(config=config, total_steps=config.steps)
        raise FloatingPointError("the numbers went wrong")

    monkeypatch.setattr(runs.train, "train", boom)
    with pytest.raises(RunFailed, match="failed: FloatingPointError: the numbers went wrong"):
        runs.run_training(TINY, tmp_path, name="boom")
    record = rundir.read_result(tmp_path / "boom")
    assert record["status"] == "failed" and "FloatingPointError" in record["error"]
