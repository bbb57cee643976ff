"""A Ctrl-C that arrives while Python creates a class (an import, a dataclass) surfaces as
"RuntimeError: Error calling __set_name__ ...", its cause the KeyboardInterrupt: it must still
be an interruption (one line, exit 130, a record that says "interrupted"), never a traceback
or a "failed" run."""

from __future__ import annotations

import sys
import types

import pytest
from typer.testing import CliRunner

from lstm_cli import __main__ as entry
from lstm_cli import api, process, rundir, runs, train
from lstm_cli.cli import app
from lstm_cli.errors import Interrupted
from lstm_cli.models import ModelSpec
from lstm_cli.train import TrainConfig


def wrapped(cause: BaseException = None) -> RuntimeError:
    try:
        try:
            raise cause or KeyboardInterrupt()
        except BaseException as inner:
            raise RuntimeError("Error calling __set_name__ on 'Field' instance 'kind' in 'ModelSpec'") from inner
    except RuntimeError as outer:
        return outer


def test_the_chain_is_searched():
    assert process.interrupted_inside(KeyboardInterrupt())
    assert process.interrupted_inside(wrapped())
    context = RuntimeError("while handling")
    context.__context__ = KeyboardInterrupt()
    assert process.interrupted_inside(context)
    assert not process.interrupted_inside(wrapped(ValueError("bad")))
    assert not process.interrupted_inside(RuntimeError("plain")) and not process.interrupted_inside(None)
    loop = RuntimeError("a")
    loop.__context__ = RuntimeError("b")
    loop.__context__.__context__ = loop  # a cycle ends the search
    assert not process.interrupted_inside(loop)


def test_a_command_interrupted_inside_an_import_says_so_in_one_line(monkeypatch):
    def interrupted(*args, **kwargs):
        raise wrapped()

    monkeypatch.setattr(api, "probe_models", interrupted)
    result = CliRunner().invoke(app, ["gradients", "--gap", "3"])
    assert (result.exit_code, result.stderr) == (130, "lstm-demo: interrupted\n")


def test_a_run_interrupted_inside_an_import_is_recorded_as_interrupted(tmp_path, monkeypatch):
    cfg = TrainConfig(task="remember", gap=3, model=ModelSpec(hidden=4), batch=4, steps=20, eval_every=5,
                      eval_size=4, probe_size=2, seed=0)
    real = train.train

    def train_then_interrupted(config):
        for event in real(config):
            yield event
            if isinstance(event, train.Step) and event.step == 3:
                raise wrapped()

    monkeypatch.setattr(train, "train", train_then_interrupted)
    with pytest.raises(Interrupted) as info:
        runs.run_training(cfg, tmp_path, name="stopped")
    assert info.value.exit_code == 130
    record = rundir.read_result(tmp_path / "stopped")
    assert record["status"] == "interrupted" and record["steps"] == 3 and "error" not in record


def test_the_entry_point_turns_an_interrupted_import_into_one_line(monkeypatch, capsys):
    class Interrupting(types.ModuleType):  # `from lstm_cli.cli import app` is interrupted mid-import
        def __getattr__(self, name):
            raise wrapped()

    exits = []
    monkeypatch.setitem(sys.modules, "lstm_cli.cli", Interrupting("lstm_cli.cli"))
    monkeypatch.setattr("os._exit", lambda code: exits.append(code) or (_ for _ in ()).throw(SystemExit(code)))
    monkeypatch.setattr("signal.signal", lambda signum, handler: None)  # pytest keeps its own Ctrl-C
    with pytest.raises(SystemExit):
        entry.main()
    assert exits == [130] and capsys.readouterr().err == "lstm-demo: interrupted\n"
