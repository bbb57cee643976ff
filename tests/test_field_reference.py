"""The field references of docs/gradients.md, docs/train.md and docs/records.md cannot drift:
every field the tool writes is documented, and every documented field is written.

A reference is a markdown table under a page's heading whose first column names fields in
backticks (a dotted name is a field inside another, ``[]`` a list of objects). The fields
written are collected from the real output at tiny sizes, over the cases that write
different fields (each model kind; a completed, a diverged and a failed run)."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from lstm_cli import records, rundir, runs
from lstm_cli.cli import app
from lstm_cli.models import ModelSpec, parse_model
from lstm_cli.train import TrainConfig

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()

TINY = TrainConfig(task="remember", gap=3, model=ModelSpec(hidden=4), batch=8, steps=6, eval_every=3,
                   eval_size=8, probe_size=2, seed=0)
# a ReLU RNN with W_hh = 3 I: its forward pass overflows, and the first update diverges
DIVERGING = TrainConfig(task="adding", gap=40, model=parse_model("rnn:activation=relu,init=identity,"
                                                                 "recurrent_scale=3,hidden=4"),
                        optimizer="sgd", lr=0.1, clip=0.0, batch=4, steps=20, eval_every=10, eval_size=4,
                        probe_size=2)
GRADIENT_MODELS = ["-m", "rnn", "-m", "rnn:activation=relu", "-m", "lstm", "-m", "gru",
                   "-m", "lstm:peephole=true,coupled=true,chrono=4", "-m", "lstm:forget_gate=false"]


def section(page: str, heading: str) -> str:
    """The text under ``heading`` (a line starting with it) up to the next heading of its level or above."""
    text = (ROOT / "docs" / page).read_text(encoding="utf-8")
    match = re.search(rf"^(#+) {re.escape(heading)}.*$", text, re.M)
    assert match, f"docs/{page} has no heading {heading!r}"
    level = len(match.group(1))
    rest = text[match.end():]
    end = re.search(rf"^#{{1,{level}}} ", rest, re.M)
    return rest[:end.start()] if end else rest


def documented(page: str, heading: str) -> set[str]:
    """The backticked names in the first column of the tables under ``heading``."""
    names = set()
    for line in section(page, heading).splitlines():
        cells = line.split("|")
        if line.startswith("|") and len(cells) > 2 and "`" in cells[1]:
            names |= set(re.findall(r"`([^`]+)`", cells[1]))
    assert names, f"docs/{page} {heading!r}: no table of fields"
    return names


def paths(obj, prefix: str = "") -> set[str]:
    """The dotted names of every field of a JSON document (``[]`` for a list of objects); a
    field that is an object somewhere and null elsewhere counts by its inner fields."""
    found = set()
    if isinstance(obj, dict):
        for key, value in obj.items():
            name = f"{prefix}.{key}" if prefix else key
            if isinstance(value, dict) and value:
                found |= paths(value, name)
            elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
                for item in value:
                    found |= paths(item, name + "[]")
            else:
                found.add(name)
    elif isinstance(obj, list):
        for item in obj:
            found |= paths(item, prefix)
    return found


def leaves(names: set[str]) -> set[str]:
    return {n for n in names if not any(other.startswith(n + ".") for other in names)}


def invoke(args) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def test_the_field_collector_can_fail():
    assert leaves(paths([{"a": {"b": 1}}, {"a": None, "c": [{"d": 2}]}])) == {"a.b", "c[].d"}
    assert documented("gradients.md", "JSON fields") >= {"command", "models[].summary.verdict"}


def test_gradients_json_reference():
    written = set()
    for task in ("remember", "adding"):
        written |= paths(json.loads(invoke(["gradients", "--gap", "4", "--task", task, "--hidden", "4",
                                            "--batch", "2", *GRADIENT_MODELS, "--format", "json"])))
    written = leaves(written)
    doc = documented("gradients.md", "JSON fields")
    assert written - doc == set(), "written but not in docs/gradients.md"
    assert doc - written == set(), "in docs/gradients.md but never written"


def test_gradients_csv_reference():
    text = invoke(["gradients", "--gap", "4", "--hidden", "4", "--batch", "2", *GRADIENT_MODELS, "--format", "csv"])
    written = set(next(csv.reader(io.StringIO(text))))
    assert written == documented("gradients.md", "CSV columns")


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """result.json of a completed, a diverged and a failed run."""
    out = tmp_path_factory.mktemp("runs")
    completed = runs.run_training(TINY, out, name="completed")
    diverged = runs.run_training(DIVERGING, out, name="diverged")
    assert (completed["status"], diverged["status"]) == ("completed", "diverged")

    def boom():
        from lstm_cli import train

        for event in train.train(TINY.resolved()):
            if isinstance(event, train.Step) and event.step == 4:
                raise ValueError("the disk went away")
            yield event

    with pytest.raises(Exception):
        runs.run_training(TINY, out, name="failed", events=boom())
    failed = rundir.read_result(out / "failed")
    assert failed["status"] == "failed"
    return out, [completed, diverged, failed]


def test_train_json_reference(results):
    _, found = results
    written = leaves(set().union(*(paths(r) for r in found)))
    doc = documented("train.md", "JSON fields")
    assert written - doc == set(), "written but not in docs/train.md"
    assert doc - written == set(), "in docs/train.md but never written"


def test_runs_listing_reference(results):
    out, _ = results
    doc = documented("records.md", "Listing fields")
    assert doc == set(records.FIELDS)
    for fmt in ("json", "jsonl"):
        text = invoke(["runs", str(out), "--format", fmt])
        rows = json.loads(text) if fmt == "json" else [json.loads(line) for line in text.splitlines()]
        assert set().union(*(row.keys() for row in rows)) == doc
    header = next(csv.reader(io.StringIO(invoke(["runs", str(out), "--format", "csv"]))))
    assert set(header) == doc


def test_sweep_jsonl_run_line_reference(tmp_path):
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text("task: remember\ngap: 3\nmodel: {kind: lstm, hidden: 4}\n"
                        "train: {batch: 8, steps: 6, eval_every: 3, eval_size: 8, probe_size: 2}\n"
                        "sweep:\n  seed: [0, 1]\n")
    text = invoke(["sweep", str(scenario), "--jobs", "1", "--format", "jsonl", "--out", str(tmp_path / "runs")])
    lines = [json.loads(line) for line in text.splitlines()]
    run_lines = [line for line in lines if line["type"] == "run"]
    assert set().union(*(line.keys() for line in run_lines)) == documented("records.md", "Sweep run lines")


def test_show_sections_reference(results):
    out, _ = results
    shown = json.loads(invoke(["runs", "show", str(out / "completed"), "--format", "json"]))
    assert set(shown) == documented("records.md", "Show fields")


def test_compare_reference(results):
    out, _ = results
    compared = json.loads(invoke(["runs", "compare", str(out / "completed"), str(out / "diverged"), "-f", "json"]))
    assert set(compared) == documented("records.md", "Compare fields")
    assert set(compared["runs"][0]) == {"name", "run_dir"}


def test_provenance_reference(results):
    """The provenance keys of config.yaml are the table's, and the page's example holds exactly them."""
    out, _ = results
    written = set(rundir.read_config(out / "completed")["provenance"])
    assert documented("records.md", "Provenance in config.yaml") == written
    example = re.search(r"```yaml\n(provenance:.*?)```", section("records.md", "Provenance in config.yaml"), re.S)
    assert example and set(yaml.safe_load(example.group(1))["provenance"]) == written
