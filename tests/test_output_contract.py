"""The output contract of every command (issue 23): one table layer, one probe, one step count,
one format vocabulary.

Every command's table is rendered at widths 40, 60, 80 and 120 (COLUMNS) and to a pipe (no
COLUMNS; CliRunner's stdout is not a terminal), with tiny real runs so it stays fast.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lstm_cli import config
from lstm_cli.cli import app

runner = CliRunner()
WIDTHS = ["40", "60", "80", "120", None]  # None: a pipe (no COLUMNS)
NONSENSE = ["0", "-5", "abc", "3", ""]
SCI = re.compile(r"^-?\d\.\de[+-]\d\d$")  # the one style of a gradient norm
NUMBERISH = re.compile(r"(?<![\w./=-])-?\d[\d.]*(?:e[+-]?\d*)?(?![\w/])")

TINY_TRAIN = ["--set", "seed=0", "--set", "model.hidden=4", "--set", "train.steps=4", "--set", "train.eval_every=2",
              "--set", "train.eval_size=8", "--set", "gradients.batch=4", "--set", "train.batch=4"]
SWEEP = """\
description: a tiny sweep for the output contract
task: remember
gap: 3
model: {hidden: 4}
train: {steps: 4, eval_every: 2, eval_size: 8, probe_size: 4, batch: 4}
sweep:
  model: [rnn, lstm]
  seed: 0..1
"""


def invoke(args, columns=None, **extra):
    env = {"COLUMNS": columns, "NO_COLOR": "1", "TERM": "dumb"}
    result = runner.invoke(app, [str(a) for a in args], env=env, **extra)
    assert result.exit_code == 0, (args, columns, result.output, result.exception)
    return result.stdout


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """Run records and a finished sweep to list (made once for the module)."""
    root = tmp_path_factory.mktemp("contract")
    sweep_file = root / "tiny.yaml"
    sweep_file.write_text(SWEEP)
    invoke(["sweep", sweep_file, "--out", root / "runs", "--jobs", "1"])
    invoke(["train", "--gap", 5, "--steps", 4, "--eval-every", 2, "--eval-size", 8, "--hidden", 4, "--batch", 4,
            "--out", root / "runs", "--name", "a-rather-long-run-name-with-many-parts", "-q"])
    return root, sweep_file


def commands(root: Path, sweep_file: Path, n: int) -> dict[str, list]:
    """Each command that prints a table, with fresh output directories (``n`` makes them unique)."""
    out = root / f"out{n}"
    return {
        "gradients": ["gradients", "--gap", 8, "--hidden", 4, "--batch", 4, "-m", "rnn", "-m", "lstm", "-m", "gru"],
        "train": ["train", "--gap", 5, "--steps", 4, "--eval-every", 2, "--eval-size", 8, "--hidden", 4,
                  "--batch", 4, "--out", out, "-q"],
        "run": ["run", "forget-gate", "--set", "gap=6", *TINY_TRAIN, "--out", out],
        "run-exploding": ["run", "exploding", "--set", "gap=6", *TINY_TRAIN, "--out", out / "x"],
        "sweep": ["sweep", sweep_file, "--out", root / "runs", "--resume", "--jobs", "1"],
        "sweep-dry-run": ["sweep", "remember-gap", "--dry-run", "--out", out],
        "runs": ["runs", root / "runs"],
        "scenarios": ["scenarios"],
    }


def table_numbers(text: str) -> list[str]:
    """The numbers of a command's output but its wall times (one decimal: they differ run to run)."""
    return [n for n in NUMBERISH.findall(re.sub(r"\d+(\.\d)? s\b", "", text)) if not re.fullmatch(r"\d+\.\d", n)]


@pytest.mark.parametrize("name", ["gradients", "train", "run", "run-exploding", "sweep", "sweep-dry-run", "runs",
                                  "scenarios"])
def test_every_table_at_every_width_keeps_its_numbers_whole(made, name):
    root, sweep_file = made
    outputs = {}
    for n, columns in enumerate(WIDTHS):
        text = invoke(commands(root, sweep_file, n)[name], columns)
        assert text.strip(), (name, columns)
        assert "…" not in text and "..." not in text.replace("e.g. ...", ""), (name, columns)
        lines = text.splitlines()
        assert not [line for line in lines if line != line.rstrip()], (name, columns, "trailing spaces")
        for token in text.split():  # a gradient norm is printed whole, in the one style
            if re.fullmatch(r"-?\d\.\de[+-]?\d*", token):
                assert SCI.match(token), (name, columns, token)
        outputs[columns] = text
    pipe = outputs[None]
    assert "narrow terminal" not in pipe, name  # a pipe gets every column
    whole = set(table_numbers(pipe))
    for columns, text in outputs.items():
        if columns is not None:  # a narrow table shows fewer numbers, never other ones
            body = text[:text.index("(narrow terminal")] if "(narrow terminal" in text else text
            assert set(table_numbers(body)) - whole <= {columns}, (name, columns, set(table_numbers(body)) - whole)


def test_a_pipe_gets_lines_wider_than_80(made):
    root, sweep_file = made
    text = invoke(commands(root, sweep_file, 9)["gradients"])
    assert max(len(line) for line in text.splitlines()) > 120  # three models side by side, whole
    narrow = invoke(commands(root, sweep_file, 9)["gradients"], "60")
    table = narrow[:narrow.index("(narrow terminal")]
    assert max(len(line) for line in table.splitlines()) <= 60
    assert "narrow terminal" in narrow and "hidden" in narrow


@pytest.mark.parametrize("columns", NONSENSE)
def test_nonsense_columns_fall_back_to_a_sane_width(made, columns):
    root, sweep_file = made
    for name in ("gradients", "scenarios", "runs"):
        text = invoke(commands(root, sweep_file, 20)[name], columns)
        assert text.strip() and "narrow terminal" not in text, (name, columns)
        assert min(len(line) for line in text.splitlines() if line.strip()) > 0


def test_table_layer_hides_in_declared_order_and_folds_only_text():
    from rich.console import Console

    from lstm_cli.render.table import Column, Layout, render

    columns = [Column("name", justify="left", fold=True), Column("value"), Column("detail", hide=2),
               Column("extra", hide=1)]
    rows = [["alpha-beta-gamma-delta", "1.234e-05", "d" * 10, "e" * 10]]
    wide = Layout(columns, rows, None)
    assert [c.header for c in wide.hidden] == []
    assert [c.header for c in Layout(columns, rows, 50).hidden] == ["extra"]
    assert {c.header for c in Layout(columns, rows, 40).hidden} == {"extra", "detail"}
    buffer = io.StringIO()
    render(columns, rows, Console(file=buffer, width=20, no_color=True), width=20)
    text = buffer.getvalue()
    assert "1.234e-05" in text and "alpha-" in text and "delta" in text
    assert all(line == line.rstrip() for line in text.splitlines())


# ---- one probe ----

@pytest.mark.parametrize("seed, gap, model", [(0, 12, "lstm"), (3, 7, "rnn"), (5, 9, "gru")])
def test_gradients_and_trains_step_zero_probe_agree(tmp_path, seed, gap, model):
    probe = json.loads(invoke(["gradients", "--gap", gap, "--seed", seed, "-m", model, "--hidden", 6, "-f", "json"]))
    summary = probe["models"][0]["summary"]
    record = json.loads(invoke(["train", "--gap", gap, "--seed", seed, "--model", model, "--hidden", 6, "--steps", 1,
                                "--eval-every", 1, "--eval-size", 8, "--batch", 4, "--out", tmp_path, "-f", "json"]))
    grad = record["gradient"]
    carrier = grad["carrier"]
    assert carrier == summary["carrier"]
    assert grad[f"{carrier}_ratio_first_step_before"] == pytest.approx(summary["relative_at_first_step"], rel=1e-12)
    assert probe["settings"]["batch"] == config.default("train.probe_size") == config.PROBE_BATCH


def test_a_scenario_probes_its_gradients_and_its_training_on_one_batch(tmp_path):
    document = json.loads(invoke(["run", "forget-gate", "--set", "gap=6", "--set", "seed=2", "--set", "model.hidden=4",
                                  "--set", "train.steps=2", "--set", "train.eval_every=2", "--set",
                                  "train.eval_size=8", "--set", "gradients.batch=5", "--set", "train.batch=4",
                                  "--out", tmp_path, "-f", "json"]))
    probed = {m["label"]: m["summary"]["relative_at_first_step"] for m in document["gradients"]["models"]}
    records = document["train"] if isinstance(document["train"], list) else [document["train"]]
    assert len(probed) == len(records) == 2
    for record, value in zip(records, probed.values()):
        assert record["gradient"]["dc_ratio_first_step_before"] == pytest.approx(value, rel=1e-12)
    clash = runner.invoke(app, ["run", "forget-gate", "--set", "gradients.batch=5", "--set", "train.probe_size=6",
                                "--out", str(tmp_path / "clash")])
    assert clash.exit_code == 2 and "one probe batch" in clash.output


def test_sweep_says_its_gradient_is_a_median(made):
    root, sweep_file = made
    text = invoke(commands(root, sweep_file, 30)["sweep"])
    assert "median grad" in text and "median: over the seeds" in text


# ---- one step count ----

def test_a_diverged_run_has_one_step_count(tmp_path):
    out = tmp_path / "runs"
    result = runner.invoke(app, ["train", "--task", "adding", "--gap", 10, "--model", "rnn", "--hidden", 8,
                                 "--optimizer", "sgd", "--lr", "1e6", "--clip", "0", "--steps", 100, "--eval-every",
                                 50, "--eval-size", 16, "--batch", 16, "--out", str(out), "--name", "boom", "-q"],
                           env={"NO_COLOR": "1"})
    assert result.exit_code == 1
    record = json.loads((out / "boom" / "result.json").read_text())
    assert record["status"] == "diverged" and record["steps"] == record["diverged_at"] >= 1
    listed = json.loads(invoke(["runs", out, "-f", "json"]))
    assert [row["steps"] for row in listed] == [record["steps"]]
    table = invoke(["runs", out])
    assert re.search(rf"\bdiverged\b.*\b{record['steps']}\b", table)
    assert re.search(rf"^steps +{record['steps']} of 100\b", result.stdout, re.M)


# ---- one format vocabulary ----

LISTING = ["gradients", "train", "run", "sweep", "runs", "scenarios"]


@pytest.mark.parametrize("command", LISTING)
def test_every_command_offers_the_one_format_vocabulary(command):
    text = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"}).stdout
    assert "--format<" + "|".join(config.FORMATS) + ">" in text.replace(" ", "")
    bad = runner.invoke(app, [command, "--format", "xml"] + (["vanishing"] if command in ("run", "sweep") else []))
    assert bad.exit_code == 2
    assert bad.output.startswith("lstm-demo: error:") and "'xml' is not one of" in bad.output


@pytest.mark.parametrize("command", LISTING)
def test_completion_offers_the_formats(command):
    import os
    import subprocess
    import sys

    env = {**os.environ, "_LSTM_DEMO_COMPLETE": "bash_complete", "COMP_WORDS": f"lstm-demo {command} --format j",
           "COMP_CWORD": "3"}
    proc = subprocess.run([str(Path(sys.executable).parent / "lstm-demo")], env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.stdout.split() == ["json", "jsonl"], proc.stderr


@pytest.mark.parametrize("fmt", config.FORMATS)
def test_every_format_of_every_listing_parses(made, fmt):
    root, sweep_file = made
    for name, args in commands(root, sweep_file, 40 + config.FORMATS.index(fmt)).items():
        text = invoke([*args, "--format", fmt])
        if fmt == "json":
            json.loads(text)
        elif fmt == "jsonl":
            assert all(isinstance(json.loads(line), dict) for line in text.splitlines()), name
        elif fmt == "csv":
            rows = list(csv.DictReader(io.StringIO(text)))
            assert rows and all(rows[0].keys()), name


@pytest.mark.parametrize("name, depth, fields", [
    ("sweep", 2, ["model", "succeeded", "runs", "median_steps_to_success", "median_seconds_to_success",
                  "median_grad_first_step", "diverged", "failed"]),
    ("run", 2, ["key", "status", "success", "steps", "wall_time", "grad_first_step", "clipped_fraction"]),
    ("runs", 1, ["name", "status", "task", "gap", "model", "steps", "wall_time", "made"]),
    ("sweep-dry-run", 1, ["index", "key", "state"]),
    ("scenarios", 1, ["name", "description", "path"]),
])
def test_table_headers_are_the_field_names(made, name, depth, fields):
    """A column is named by its field, words apart (a cell of two fields: both names, metric value)."""
    root, sweep_file = made
    args = commands(root, sweep_file, 50)[name]
    machine = list(csv.DictReader(io.StringIO(invoke([*args, "--format", "csv"]))))
    again = [*args, "--overwrite"] if name == "run" else args
    headers = column_headers(invoke(again, "1000"), depth, len(machine))
    for field in fields:
        assert field in machine[0], (name, field)
        assert any(field in header.replace("/ ", "/").replace(" ", "_").split("/") for header in headers), \
            (name, field, headers)


def column_headers(text: str, depth: int, rows: int) -> list[str]:
    """The names of the last table's columns, each read down its ``depth`` header lines (columns are
    split where the header and all ``rows`` rows have two spaces or more)."""
    lines = text.splitlines()
    rule = max(i for i, line in enumerate(lines) if line and set(line) == {"─"})
    header, body = lines[rule - depth:rule], lines[rule + 1:rule + 1 + rows]
    width = len(lines[rule])
    blank = [all(i >= len(line) or line[i] == " " for line in header + body) for i in range(width)]
    blank = [b and ((i > 0 and blank[i - 1]) or (i + 1 < width and blank[i + 1])) for i, b in enumerate(blank)]
    spans, start = [], None
    for i, empty in enumerate(blank + [True]):
        if not empty and start is None:
            start = i
        elif empty and start is not None:
            spans.append((start, i))
            start = None
    return [" ".join(line[a:b].strip() for line in header if line[a:b].strip()) for a, b in spans]
