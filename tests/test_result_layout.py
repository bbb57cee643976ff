"""result.json's layout is one declaration (``rundir.Result``): what the writer writes is declared,
and what the readers read is declared."""

from __future__ import annotations

import ast
import json
import typing
from pathlib import Path

import pytest

from lstm_cli import rundir, runs, train
from lstm_cli.errors import RunFailed
from lstm_cli.models import ModelSpec
from lstm_cli.train import TrainConfig

PACKAGE = Path(__file__).resolve().parent.parent / "lstm_cli"
TINY = dict(task="remember", gap=4, model=ModelSpec(kind="lstm", hidden=4), batch=8, steps=12,
            eval_every=6, eval_size=16, probe_size=4)


def _keys(typed) -> tuple[set[str], set[str]]:
    """(required keys, every key) of a TypedDict."""
    return set(typed.__required_keys__), set(typing.get_type_hints(typed))


def _check_layout(record: dict) -> None:
    required, declared = _keys(rundir.Result)
    assert required <= set(record), required - set(record)
    assert set(record) <= declared, set(record) - declared
    assert record["status"] in rundir.STATUSES
    if "gradient" in record:
        assert set(record["gradient"]) == _keys(rundir.Gradient)[1]
    if "clipping" in record:
        assert set(record["clipping"]) == _keys(rundir.Clipping)[1]


@pytest.mark.parametrize("task", ["remember", "adding"])  # accuracy and mse: the metric is a key
def test_a_completed_record_has_exactly_the_declared_keys(tmp_path, task):
    record = runs.run_training(TrainConfig(**{**TINY, "task": task}), tmp_path, name="one")
    assert record["status"] == "completed" and record["metric"] in record
    _check_layout(record)
    _check_layout(json.loads((tmp_path / "one" / rundir.RESULT).read_text()))


def test_a_diverged_record_has_exactly_the_declared_keys(tmp_path):
    cfg = TrainConfig(task="adding", gap=10, model=ModelSpec(hidden=8), batch=16, steps=60, optimizer="sgd",
                      lr=1e6, clip=0.0, eval_every=30, eval_size=16, probe_size=4)
    record = runs.run_training(cfg, tmp_path, name="boom")
    assert record["status"] == "diverged" and "diverged_at" in record
    _check_layout(record)


def test_a_failed_record_has_exactly_the_declared_keys(tmp_path, monkeypatch):
    def boom(config, params=None):
        yield train.Started(config=config, total_steps=config.steps)
        raise FloatingPointError("no")

    monkeypatch.setattr(runs.train, "train", boom)
    with pytest.raises(RunFailed):
        runs.run_training(TrainConfig(**TINY), tmp_path, name="boom")
    record = rundir.read_result(tmp_path / "boom")
    assert record["status"] == "failed" and "error" in record
    _check_layout(record)


def test_the_layout_check_sees_an_undeclared_key():
    record = json.loads(json.dumps({k: None for k in _keys(rundir.Result)[0]} | {"status": "running"}))
    _check_layout(record)
    with pytest.raises(AssertionError):
        _check_layout(record | {"sucess": True})
    with pytest.raises(AssertionError):
        _check_layout({k: v for k, v in record.items() if k != "seed"})


def _read_keys(source: str) -> set[str]:
    """String keys read from a result record: ``record["k"]``, ``record.get("k")`` and the same on
    ``r``, ``result``, ``first`` (the names the readers give a record), and on their ``["gradient"]``
    or a ``grad`` / ``gradient`` taken from it."""
    names, gradients = {"record", "r", "result", "first"}, {"grad", "gradient"}
    keys = set()
    for node in ast.walk(ast.parse(source)):
        target = key = None
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            target, key = node.value, node.slice.value
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
              and node.args and isinstance(node.args[0], ast.Constant)):
            target, key = node.func.value, node.args[0].value
        if isinstance(key, str) and isinstance(target, ast.Name) and target.id in names:
            keys.add(key)
        elif isinstance(key, str) and isinstance(target, ast.Name) and target.id in gradients:
            keys.add("gradient." + key)
        elif isinstance(key, str) and isinstance(target, ast.Subscript) and \
                isinstance(target.slice, ast.Constant) and target.slice.value == "gradient":
            keys.add("gradient." + key)
    return keys


READERS = ["runs.py", "records.py", "sweep.py", "api.py", "inspect.py", "render/train.py", "render/records.py",
           "render/report.py", "render/sweep.py", "render/compare.py", "render/figures.py"]
# sweep rows (render/sweep) and sweep.json (render/report) use these names too; api.run_scenario's
# result (gradients, records, sweep_dir) and render/sweep's plan rows (index, key, path, state) are not records
NOT_RESULT_KEYS = {"description", "gradients", "records", "sweep_dir", "index", "key", "path", "state"}


def test_every_key_the_readers_read_is_declared():
    declared = _keys(rundir.Result)[1] | {"gradient." + k for k in _keys(rundir.Gradient)[1]}
    read = set()
    for name in READERS:
        read |= _read_keys((PACKAGE / name).read_text())
    assert read - declared - NOT_RESULT_KEYS == set()
    assert "status" in read and "gradient.dh_ratio_first_step_before" in read  # the scan sees the readers


def test_the_reader_scan_finds_a_key():
    assert _read_keys('record["statos"]\nr.get("x")\nrecord["gradient"]["y"]\nother["z"]\ngrad.get("w")\n') == \
        {"statos", "x", "gradient", "gradient.y", "gradient.w"}
