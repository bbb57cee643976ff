"""The GRU and the LSTM's variants everywhere a model works: gradients -m, train --model,
scenario files, --set, sweeps, checkpoints and gradients --from (tiny sizes)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from lstm_cli.cli import app

runner = CliRunner()
ENV = {"COLUMNS": "200", "NO_COLOR": "1"}
MODELS = ["lstm", "lstm:forget_gate=false", "gru", "lstm:peephole=true", "lstm:coupled=true"]


def test_gradients_shows_the_five_cells_side_by_side():
    args = ["gradients", "--gap", "50", "--batch", "8"]
    for text in MODELS:
        args += ["-m", text]
    result = runner.invoke(app, args + ["--format", "json"], env=ENV)
    assert result.exit_code == 0, result.output
    profiles = json.loads(result.stdout)["models"]
    assert [p["label"] for p in profiles] == MODELS
    by_label = {p["label"]: p for p in profiles}
    assert by_label["gru"]["summary"]["carrier"] == "dh"
    assert all(by_label[t]["summary"]["carrier"] == "dc" for t in MODELS if t != "gru")
    # the forget-gate-free cell's belt: f = 1 at every step, so the product is exactly 1
    assert by_label["lstm:forget_gate=false"]["steps"]["forget_product"] == [1.0] * 52
    table = runner.invoke(app, args, env=ENV)
    assert table.exit_code == 0 and all(f"\n{text}: ||dL/d" in table.stdout for text in MODELS)
    # every paragraph of the explanation starts with its label, the GRU's too, and names what carries it
    gru = by_label["gru"]["summary"]
    carrier = "the direct path carries it" if gru["belt_rel"] >= gru["gates_rel"] else \
        "the paths through n_t and the gates carry it"
    paragraph = table.stdout.split("\ngru: of h's gradient", 1)[1].split("\nlstm:peephole=true: of", 1)[0]
    assert carrier in " ".join(paragraph.split())


def test_train_checkpoint_and_gradients_from(tmp_path):
    for text in ("gru", "lstm:peephole=true"):
        result = runner.invoke(app, ["train", "--task", "copy", "--gap", "2", "--model", text, "--hidden", "4",
                                     "--steps", "3", "--eval-every", "3", "--eval-size", "8", "--batch", "4",
                                     "--out", str(tmp_path), "--format", "json", "--quiet"], env=ENV)
        assert result.exit_code == 0, result.output
        record = json.loads(result.stdout)
        assert record["model"] == text.replace("lstm:", "lstm:hidden=4,").replace("gru", "gru:hidden=4") \
            and record["status"] == "completed"
        probed = runner.invoke(app, ["gradients", "--from", record["run_dir"], "--format", "json"], env=ENV)
        assert probed.exit_code == 0, probed.output
        assert json.loads(probed.stdout)["models"][0]["model"]["kind"] == text.split(":")[0]


def test_scenario_file_set_and_sweep(tmp_path):
    scenario = tmp_path / "cells.yaml"
    scenario.write_text("description: the variants\ntask: remember\ngap: 3\nseed: 0\n"
                        "model: lstm\ngradients:\n  batch: 4\n"
                        "train:\n  steps: 2\n  eval_every: 2\n  eval_size: 8\n  probe_size: 4\n  batch: 4\n"
                        "sweep:\n  model: [gru, 'lstm:forget_gate=false']\n")
    result = runner.invoke(app, ["sweep", str(scenario), "--out", str(tmp_path / "runs"), "--jobs", "1",
                                 "--format", "jsonl", "--set", "model.hidden=4"], env=ENV)
    assert result.exit_code == 0, result.output
    assert "gru" in result.stdout and "forget_gate=false" in result.stdout
    one = runner.invoke(app, ["run", str(scenario), "--out", str(tmp_path / "one"), "--format", "json",
                              "--set", "model=lstm:peephole=true", "--set", "model.hidden=4"], env=ENV)
    assert one.exit_code == 0, one.output
    assert "peephole" in one.stdout
    bad = runner.invoke(app, ["run", str(scenario), "--set", "model=lstm:coupled=true,forget_gate=false"], env=ENV)
    assert bad.exit_code == 2 and "needs the forget gate" in bad.output
