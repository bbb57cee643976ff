"""``lstm-demo train`` through Typer's CliRunner: exit codes, the record, JSON = result.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lstm_cli import rundir
from lstm_cli.cli import app

runner = CliRunner()
# remember at gap 5 with a small LSTM: seed 0 succeeds well within 200 steps
TINY = ["--gap", "5", "--hidden", "8", "--batch", "32", "--steps", "200", "--lr", "0.01",
        "--eval-every", "10", "--eval-size", "64", "--seed", "0"]


def train(*args: str):
    return runner.invoke(app, ["train", *args])


def test_tiny_run_json_equals_result_json(tmp_path):
    result = train(*TINY, "--out", str(tmp_path), "--format", "json")
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    run_dir = tmp_path / "remember-gap5-lstm-hidden8-seed0"
    assert record == json.loads((run_dir / "result.json").read_text())
    assert record["status"] == "completed" and record["success"] is True and record["accuracy"] >= 0.99
    assert {p.name for p in run_dir.iterdir()} == {"config.yaml", "metrics.jsonl", "result.json", "checkpoint.npz"}
    assert result.stderr == ""  # no progress bar when stderr is not a terminal


def test_table_shows_outcome_chance_profile_and_heatmap(tmp_path):
    result = train(*TINY, "--out", str(tmp_path), "--name", "mine")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "SUCCESS: accuracy >= 0.99 reached" in out
    assert "chance 0.25" in out
    assert "at init" in out and "||dL/dc||" in out  # profiles before and after
    assert "steps back (rows) x training step" in out  # the heatmap
    # without colour (a pipe), one glyph per decade; the legend says which: the top decade is 1
    assert '"_" 0' in out and ".1e-8 :1e-7 -1e-6" in out and "%0.1 @1" in out
    assert (tmp_path / "mine" / "result.json").exists()


def test_rnn_failure_is_reported_honestly_not_as_an_error(tmp_path):
    result = train("--model", "rnn", "--gap", "30", "--hidden", "8", "--batch", "16", "--steps", "20",
                   "--eval-every", "10", "--eval-size", "32", "--out", str(tmp_path), "--format", "json")
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["status"] == "completed" and record["success"] is False
    assert record["accuracy"] < 0.99 and record["steps"] == 20
    assert record["gradient"]["carrier"] == "dh"
    assert record["gradient"]["dh_ratio_first_step"] < 1e-3  # vanished 31 steps back


def test_divergence_exits_1_with_one_line(tmp_path):
    result = train("--task", "adding", "--gap", "10", "--hidden", "8", "--batch", "16", "--optimizer", "sgd",
                   "--lr", "1e6", "--clip", "0", "--steps", "100", "--out", str(tmp_path), "--name", "boom",
                   "--format", "json")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "diverged" in lines[0] and "--clip" in lines[0]
    record = json.loads(result.stdout)
    assert record["status"] == "diverged" and record == rundir.read_result(tmp_path / "boom")


@pytest.mark.parametrize("args, words", [
    (["--optimizer", "rmsprop"], "optimizer"),
    (["--gap", "0"], "gap"),
    (["--clip", "-1"], "clip"),
    (["--lr", "0"], "lr"),
    (["--format", "xml"], "format"),
    (["--model", "transformer"], "transformer"),
    (["--task", "sorting"], "sorting"),
    (["--steps", "many"], "'--steps'"),
    (["--momentum", "1.5"], "momentum"),
])
def test_bad_options_exit_2_with_one_line(tmp_path, args, words):
    result = train(*args, "--out", str(tmp_path))
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not any(tmp_path.iterdir())  # nothing was started


def test_gradients_from_a_trained_run(tmp_path):
    assert train(*TINY, "--out", str(tmp_path), "--name", "r", "--quiet").exit_code == 0
    result = runner.invoke(app, ["gradients", "--from", str(tmp_path / "r"), "--format", "json"])
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["settings"]["gap"] == 5 and doc["settings"]["from"] == str(tmp_path / "r")


def test_help_has_an_example_and_readme_documents_the_json_fields():
    result = runner.invoke(app, ["train", "--help"])
    assert result.exit_code == 0 and "lstm-demo train --task remember --gap 50" in result.stdout
    section = (Path(__file__).parent.parent / "docs" / "train.md").read_text()  # the command's reference page
    for field in ("status", "success", "accuracy", "mse", "steps", "max_steps", "wall_time", "diverged_at",
                  "dh_ratio_first_step", "dc_ratio_first_step", "chance", "criterion"):
        assert f"`{field}`" in section, field


def test_help_states_the_default_learning_rates_and_budgets():
    from lstm_cli import config, tasks, train as training

    help_text = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "400"}).stdout
    text = " ".join(help_text.replace("│", " ").split())
    for optimizer, lr in config.DEFAULT_LR.items():
        assert f"{optimizer} {lr:g}" in text, optimizer
    for task in tasks.TASKS.values():
        assert f"{task.name} {task.steps}" in text, task.name
        lr = training.TrainConfig(task=task.name).resolved().lr
        assert lr == config.DEFAULT_LR["adam"] or f"adam {lr:g} on {task.name}" in text, task.name
    assert "adam 0.003 on adding" in text and "copy 5000" in text  # the values README quotes
    defaults = training.TrainConfig()
    assert f"(default {defaults.eval_every})" in text and f"(default {defaults.eval_size})" in text

