"""The command line of issue 12: train/sweep/run --plot, sweep --format jsonl streaming, lstm-demo runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lstm_cli import rundir
from lstm_cli.cli import app

runner = CliRunner()
TINY_TRAIN = ["--gap", "4", "--hidden", "6", "--batch", "16", "--steps", "20", "--eval-every", "10",
              "--eval-size", "16"]
# four runs of a few steps each (seeds 0-3), as a scenario file
TINY_SWEEP = ("task: remember\ngap: 3\nmodel: {kind: lstm, hidden: 4}\n"
              "train: {batch: 8, steps: 40, eval_every: 20, eval_size: 8, probe_size: 2}\n"
              "sweep:\n  model: [rnn, lstm]\n  seed: [0, 1]\n")


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_train_plot_draws_the_run(tmp_path):
    pytest.importorskip("matplotlib")
    target = tmp_path / "train.png"
    result = runner.invoke(app, ["train", *TINY_TRAIN, "--out", str(tmp_path), "--name", "r", "--format", "json",
                                 "--plot", str(target)])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["status"] == "completed"  # stdout holds only the record
    assert result.stderr.strip() == f"lstm-demo: plot written to {target}"
    assert _png_size(target) == (1000, 700)


def test_train_plot_bad_target_fails_before_training(tmp_path):
    result = runner.invoke(app, ["train", *TINY_TRAIN, "--out", str(tmp_path), "--plot", str(tmp_path / "f.gif")])
    assert result.exit_code == 2 and "--plot" in result.stderr and ".png, .svg, .pdf" in result.stderr
    assert not (tmp_path / "remember-gap4-lstm-hidden6-seed0").exists()


def test_sweep_jsonl_streams_a_line_per_run_before_the_last_run_finishes(tmp_path):
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(TINY_SWEEP)
    env = {**os.environ, "NO_COLOR": "1"}
    # one run a unit (--no-stack): a stack of seeds reports its runs when the stack ends
    proc = subprocess.Popen([sys.executable, "-m", "lstm_cli", "sweep", str(scenario), "--jobs", "1", "--no-stack",
                             "--format", "jsonl", "--out", str(tmp_path / "runs")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    first = json.loads(proc.stdout.readline())
    first_seen = time.time_ns()
    rest, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    lines = [first] + [json.loads(line) for line in rest.splitlines()]
    run_lines = [line for line in lines if line["type"] == "run"]
    summary = [line for line in lines if line["type"] == "summary"]
    assert lines == run_lines + summary  # every run line comes before the summary
    assert first["type"] == "run" and len(run_lines) == 4 and len(summary) == 2
    # the first run's line was read before the last run's record was finished
    last = run_lines[-1]
    assert Path(last["run_dir"], rundir.RESULT).stat().st_mtime_ns > first_seen
    for line in run_lines:  # each line is the numbers of its record
        record = rundir.read_result(line["run_dir"])
        assert (line["status"], line["success"], line["steps"], line["value"]) == (
            record["status"], record["success"], record["steps"], record[record["metric"]])
        assert line["clipped_fraction"] == record["clipping"]["clipped_fraction"] and line["kept"] is False
    on_disk = [json.loads(line) for line in (tmp_path / "runs" / "tiny" / "summary.jsonl").read_text().splitlines()]
    assert [{k: v for k, v in line.items() if k != "type"} for line in summary] == on_disk

    # resumed: the kept runs come first, marked, and nothing else runs
    again = runner.invoke(app, ["sweep", str(scenario), "--resume", "--format", "jsonl",
                                "--out", str(tmp_path / "runs")])
    assert again.exit_code == 0, again.stderr
    kept = [json.loads(line) for line in again.stdout.splitlines()]
    assert [line["kept"] for line in kept if line["type"] == "run"] == [True] * 4
    csv_out = runner.invoke(app, ["sweep", str(scenario), "--resume", "--format", "csv", "--out",
                                  str(tmp_path / "runs")])
    assert csv_out.stdout == (tmp_path / "runs" / "tiny" / "summary.csv").read_text()  # csv: the summary alone


def test_sweep_and_run_plot_the_success_rate(tmp_path):
    pytest.importorskip("matplotlib")
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(TINY_SWEEP.replace("model: [rnn, lstm]", "gap: [3, 4]"))
    result = runner.invoke(app, ["sweep", str(scenario), "--jobs", "1", "--out", str(tmp_path / "a"),
                                 "--plot", str(tmp_path / "sweep.svg")])
    assert result.exit_code == 0, result.stderr
    assert f"lstm-demo: plot written to {tmp_path / 'sweep.svg'}" in result.stderr
    svg = (tmp_path / "sweep.svg").read_text()
    assert "success rate" in svg and "gap" in svg
    ran = runner.invoke(app, ["run", str(scenario), "--out", str(tmp_path / "b"), "--plot", str(tmp_path / "run.png")])
    assert ran.exit_code == 0, ran.stderr
    assert _png_size(tmp_path / "run.png") == (1000, 450)  # the sweep figure
    one = runner.invoke(app, ["run", str(scenario), "--index", "0", "--out", str(tmp_path / "c"),
                              "--plot", str(tmp_path / "one.png")])
    assert one.exit_code == 0, one.stderr
    assert _png_size(tmp_path / "one.png") == (1000, 700)  # a single run: the training figure


def test_runs_lists_every_kind_of_record_and_exits_0(tmp_path):
    out = tmp_path / "runs"
    assert runner.invoke(app, ["train", *TINY_TRAIN, "--out", str(out), "--name", "finished"]).exit_code == 0
    diverged = runner.invoke(app, ["train", "--task", "adding", "--gap", "40", "--model",
                                   "rnn:activation=relu,init=identity,recurrent_scale=3", "--hidden", "4",
                                   "--optimizer", "sgd", "--lr", "0.1", "--clip", "0", "--batch", "4", "--steps",
                                   "20", "--eval-every", "10", "--eval-size", "4", "--out", str(out),
                                   "--name", "diverged"])
    assert diverged.exit_code == 1  # a diverged run
    assert runner.invoke(app, ["train", *TINY_TRAIN, "--out", str(out), "--name", "running"]).exit_code == 0
    assert runner.invoke(app, ["train", *TINY_TRAIN, "--out", str(out), "--name", "interrupted"]).exit_code == 0
    for name, status in (("running", "running"), ("interrupted", "interrupted")):
        record = rundir.read_result(out / name)  # as a run still training (this process) or stopped by Ctrl-C
        (out / name / rundir.RESULT).write_text(json.dumps({**record, "status": status}))
    (out / "stray").mkdir()

    result = runner.invoke(app, ["runs", str(out), "--format", "json"])
    assert result.exit_code == 0, result.stderr
    statuses = {row["name"]: row["status"] for row in json.loads(result.stdout)}
    assert statuses == {"finished": "completed", "diverged": "diverged", "running": "running",
                        "interrupted": "interrupted"}
    assert result.stderr.splitlines() == [f"lstm-demo: {out}/stray: not a run record (no result.json, "
                                          f"config.yaml, metrics.jsonl) and no run records inside"]
    table = runner.invoke(app, ["runs", str(out)])
    assert table.exit_code == 0 and "4 run record(s)" in " ".join(table.stdout.split())  # the title may wrap
    for status in statuses.values():
        assert status in table.stdout
    csv_out = runner.invoke(app, ["runs", str(out), "--format", "csv"])
    assert csv_out.exit_code == 0 and csv_out.stdout.splitlines()[0] == (
        "name,status,task,gap,model,seed,metric,value,success,steps,wall_time,made")
    bad = runner.invoke(app, ["runs", str(out), "--format", "xml"])
    assert bad.exit_code == 2 and bad.stderr.count("\n") == 1


def test_run_plot_of_a_scenario_without_training_is_bad_input(tmp_path):
    pytest.importorskip("matplotlib")
    result = runner.invoke(app, ["run", "vanishing", "--plot", str(tmp_path / "v.png"), "--out", str(tmp_path)])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == "lstm-demo: error: --plot draws training runs, and vanishing has no train: section\n"
