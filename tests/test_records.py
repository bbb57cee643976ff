"""Listing run records (lstm_cli/records.py, render/records.py): real records of a finished, a
diverged, an interrupted and a still-running run, a sweep's group, and the directories that are
not runs, each reported in one line."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest
import yaml

from lstm_cli import records, rundir, runs, train
from lstm_cli.errors import BadInput, Interrupted
from lstm_cli.models import ModelSpec, parse_model
from lstm_cli.render import records as view
from lstm_cli.train import TrainConfig

FINISHED = TrainConfig(task="remember", gap=3, model=ModelSpec(hidden=4), batch=8, steps=6, eval_every=3,
                       eval_size=8, probe_size=2, seed=0)
# a ReLU RNN with W_hh = 3 I: its forward pass overflows, and the first update diverges
DIVERGING = TrainConfig(task="adding", gap=40, model=parse_model("rnn:activation=relu,init=identity,"
                                                                 "recurrent_scale=3,hidden=4"),
                        optimizer="sgd", lr=0.1, clip=0.0, batch=4, steps=20, eval_every=10, eval_size=4,
                        probe_size=2)


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    """A runs/ directory with one record of every kind, and the listing taken while one was running."""
    out = tmp_path_factory.mktemp("runs")
    runs.run_training(FINISHED, out, name="finished")
    assert runs.run_training(DIVERGING, out, name="diverged")["status"] == "diverged"

    def stop(event):
        if isinstance(event, train.Step) and event.step == 2:
            raise KeyboardInterrupt

    with pytest.raises(Interrupted):
        runs.run_training(FINISHED, out, name="interrupted", on_event=stop)

    seen = {}

    def look(event):  # the listing as it is while this run trains
        if isinstance(event, train.Step) and event.step == 2:
            seen["during"] = records.list_records(out)

    runs.run_training(FINISHED, out / "remember-gap", name="seed=1", on_event=look)
    (out / "stray" / "notes").mkdir(parents=True)
    (out / "stray" / "notes" / "todo.txt").write_text("not a run")
    (out / "broken").mkdir()
    (out / "broken" / "result.json").write_text("{not json")
    (out / ".hidden").mkdir()
    (out / "summary.csv").write_text("a file, not a directory: ignored\n")
    return out, seen["during"]


def _by_name(listing):
    return {row["name"]: row for row in listing.rows}


def test_every_kind_of_record_gets_its_status(out):
    directory, during = out
    listing = records.list_records(directory)
    rows = _by_name(listing)
    assert sorted(rows) == ["diverged", "finished", "interrupted", "remember-gap/seed=1"]
    assert rows["finished"]["status"] == "completed" and rows["diverged"]["status"] == "diverged"
    assert rows["interrupted"]["status"] == "interrupted" and rows["interrupted"]["steps"] == 2
    assert _by_name(during)["remember-gap/seed=1"]["status"] == "running"  # seen while it trained
    assert rows["remember-gap/seed=1"]["status"] == "completed"


def test_rows_are_the_numbers_of_the_records(out):
    directory, _ = out
    rows = _by_name(records.list_records(directory))
    for name in ("finished", "diverged"):
        result = rundir.read_result(directory / name)
        config = yaml.safe_load((directory / name / rundir.CONFIG).read_text())
        row = rows[name]
        assert (row["task"], row["gap"], row["model"], row["seed"]) == (result["task"], result["gap"],
                                                                        result["model"], result["seed"])
        assert (row["metric"], row["value"]) == (result["metric"], result[result["metric"]])
        assert (row["steps"], row["wall_time"], row["success"]) == (result["steps"], result["wall_time"],
                                                                    result["success"])
        assert row["made"] == config["provenance"]["start_time"]
        assert list(row) == records.FIELDS


def test_stray_and_broken_directories_are_one_line_each(out):
    directory, _ = out
    problems = records.list_records(directory).problems
    assert len(problems) == 2, problems
    assert problems[0].startswith("broken: result.json is not valid JSON")
    assert problems[1].startswith("stray: not a run record")


def test_a_running_record_whose_process_is_gone_is_abandoned(tmp_path):
    runs.run_training(FINISHED, tmp_path, name="r")
    result = rundir.read_result(tmp_path / "r")
    (tmp_path / "r" / rundir.RESULT).write_text(json.dumps({**result, "status": "running"}))
    config_path = tmp_path / "r" / rundir.CONFIG
    config = yaml.safe_load(config_path.read_text())
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    config["provenance"]["pid"] = gone.pid  # a process that has exited
    config_path.write_text(yaml.safe_dump(config))
    assert records.list_records(tmp_path).rows[0]["status"] == "abandoned"
    config["provenance"]["hostname"] = "another-host"  # cannot be told from here: as recorded
    config_path.write_text(yaml.safe_dump(config))
    assert records.list_records(tmp_path).rows[0]["status"] == "running"


def test_a_record_without_result_and_a_run_directory_itself(tmp_path):
    runs.run_training(FINISHED, tmp_path, name="r")
    (tmp_path / "r" / rundir.RESULT).unlink()
    row = records.list_records(tmp_path).rows[0]
    assert (row["status"], row["task"], row["model"], row["metric"]) == ("no result", "remember", "lstm:hidden=4",
                                                                         None)
    only = records.list_records(tmp_path / "r")  # the directory of one run lists that run
    assert [r["name"] for r in only.rows] == ["r"]


def test_a_missing_directory_is_bad_input(tmp_path):
    with pytest.raises(BadInput, match="no such directory"):
        records.list_records(tmp_path / "nothing")


def test_formats(out, capsys):
    directory, _ = out
    listing = records.list_records(directory)
    view.write(listing, "json", directory)
    captured = capsys.readouterr()
    assert json.loads(captured.out) == json.loads(json.dumps(listing.rows))
    assert captured.err.splitlines() == [f"lstm-demo: {directory}/{p}" for p in listing.problems]
    view.write(listing, "csv", directory)
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["name"] for r in rows] == [r["name"] for r in listing.rows]
    assert rows[0]["status"] == listing.rows[0]["status"]
    view.write(listing, "table", directory)
    table = capsys.readouterr().out
    for row in listing.rows:
        assert row["status"] in table
    assert "4 run record(s)" in table
