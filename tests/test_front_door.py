"""Output that reads well wherever it goes (issue 15): full-width tables to a file or a pipe,
one label per model in every table of an output, and the bundled scenario files findable
(``lstm-demo scenarios`` names each file; ``scenarios show NAME`` prints it) from a source
checkout and from a wheel installed elsewhere.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LSTM_DEMO = [sys.executable, "-m", "lstm_cli"]
ABSOLUTE_NORM = "||dL/dh||"  # the first column a narrow layout hides


def run(args, cwd: Path, columns: str | None = None, python: str = sys.executable, **env_extra):
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "FORCE_COLOR", "TERM")}
    env.update(NO_COLOR="1", **env_extra)
    if columns is not None:
        env["COLUMNS"] = columns
    return subprocess.run([python, "-m", "lstm_cli", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)


def test_gradients_to_a_file_holds_every_column_and_columns_80_hides_some(tmp_path):
    with open(tmp_path / "out.txt", "w") as out:  # stdout is a file, no COLUMNS: the whole table
        done = subprocess.run([*LSTM_DEMO, "gradients", "--gap", "50"], cwd=tmp_path, stdout=out, text=True,
                              stderr=subprocess.PIPE, env={k: v for k, v in os.environ.items()
                                                          if k not in ("COLUMNS", "FORCE_COLOR")})
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "out.txt").read_text(encoding="utf-8")
    header = next(line for line in text.splitlines() if line.lstrip().startswith("back"))
    assert header.count(ABSOLUTE_NORM) == 2 and "||dL/dc||" in header and "bound" in header and "belt" in header
    assert "narrow terminal" not in text
    assert max(len(line.rstrip()) for line in text.splitlines()) > 100

    narrow = run(["gradients", "--gap", "50"], tmp_path, columns="80")
    assert narrow.returncode == 0, narrow.stderr
    assert ABSOLUTE_NORM not in next(line for line in narrow.stdout.splitlines() if line.lstrip().startswith("back"))
    note = " ".join(narrow.stdout[narrow.stdout.index("(narrow terminal:"):].split())
    assert note.startswith("(narrow terminal: rnn ||dL/dh||, rnn bound,") and "lstm ||dL/dc||" in note  # named
    assert max(len(line.rstrip()) for line in narrow.stdout.splitlines()) <= 80


def test_train_to_a_file_keeps_every_digit_of_its_profiles(tmp_path):
    with open(tmp_path / "out.txt", "w") as out:
        done = subprocess.run([*LSTM_DEMO, "train", "--gap", "5", "--steps", "4", "--eval-every", "2", "--quiet"],
                              cwd=tmp_path, stdout=out, text=True, stderr=subprocess.PIPE,
                              env={k: v for k, v in os.environ.items() if k not in ("COLUMNS", "FORCE_COLOR")})
    assert done.returncode == 0, done.stderr
    assert "…" not in (tmp_path / "out.txt").read_text(encoding="utf-8")  # no cell cut short


def test_one_label_per_model_in_the_gradient_and_training_tables(tmp_path):
    done = run(["run", "forget-gate", "--set", "gap=6", "--set", "gradients.batch=4", "--set", "train.steps=2",
                "--set", "train.eval_every=2", "--set", "train.eval_size=8", "--set", "train.probe_size=4",
                "--set", "train.batch=4", "--format", "json"], tmp_path)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    gradient_labels = [model["label"] for model in document["gradients"]["models"]]
    run_keys = [Path(record["run_dir"]).name for record in document["train"]]
    assert gradient_labels == run_keys == ["forget_bias=0", "forget_bias=3"]


def test_a_scenario_without_a_model_axis_keeps_the_model_label(tmp_path):
    done = run(["run", "exploding", "--set", "gap=6", "--set", "gradients.batch=4", "--format", "json",
                "--set", "train.steps=2", "--set", "train.eval_every=2", "--set", "train.eval_size=8",
                "--set", "train.probe_size=4", "--set", "train.batch=4"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert [m["label"] for m in json.loads(done.stdout)["gradients"]["models"]] == ["rnn:recurrent_scale=3"]


def test_scenarios_names_each_file_and_show_prints_it_from_the_checkout(tmp_path):
    listing = run(["scenarios"], tmp_path)
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.splitlines()[0].split() == ["name", "description", "path"]
    for line in listing.stdout.splitlines()[2:]:  # under the header and its rule
        name, path = line.split()[0], Path(line.split()[-1])
        assert path == ROOT / "scenarios" / f"{name}.yaml" and path.is_file()
    shown = run(["scenarios", "show", "remember-gap"], tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == (ROOT / "scenarios" / "remember-gap.yaml").read_text(encoding="utf-8")
    assert shown.stdout.startswith("# ") and "sweep:" in shown.stdout


@pytest.mark.parametrize("args, message", [
    (["scenarios", "show", "remember-gapp"], "remember-gapp: no such scenario file or bundled scenario"),
    (["scenarios", "show"], "usage: lstm-demo scenarios [show NAME]"),
    (["scenarios", "list"], "usage: lstm-demo scenarios [show NAME]"),
])
def test_scenarios_show_refuses_in_one_line(tmp_path, args, message):
    done = run(args, tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and message in done.stderr


def test_scenarios_show_from_a_wheel_installed_elsewhere(tmp_path):
    """Build a wheel of a copy of the checkout, install it into a fresh venv (its dependencies come
    from this environment), and run ``scenarios show`` there from a directory far from the source."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    for folder in ("lstm_cli", "scenarios"):
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path / "dist"), str(source)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    wheel = next((tmp_path / "dist").glob("lstm_demo-*.whl"))
    prefix = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(prefix)], check=True, timeout=120)
    # --ignore-installed: without it pip would first uninstall this environment's own lstm-demo
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--ignore-installed", "-q",
                                "--prefix", str(prefix), str(wheel)], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    python = str(prefix / "bin" / "python")
    deps = sysconfig.get_paths()["purelib"]  # numpy, typer, rich, yaml; its editable lstm_cli is not on this path
    listing = run(["scenarios", "--format", "jsonl"], elsewhere, python=python, PYTHONPATH=deps)
    assert listing.returncode == 0, listing.stderr
    paths = [Path(json.loads(line)["path"]) for line in listing.stdout.splitlines()]
    assert paths and all(path.is_relative_to(prefix / "share" / "lstm-demo" / "scenarios") for path in paths)
    shown = run(["scenarios", "show", "remember-gap"], elsewhere, python=python, PYTHONPATH=deps)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == (ROOT / "scenarios" / "remember-gap.yaml").read_text(encoding="utf-8")
