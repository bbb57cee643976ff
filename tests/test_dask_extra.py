"""Dask is an optional extra: what holds with or without it installed (issue 13, acceptance 3).

These tests need no Dask, so they are not in test_dask.py (skipped without it): a
missing extra is one line and exit 2, a bad --scheduler is refused before anything
runs, and the commands that do not use a cluster never import Dask.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from lstm_cli.cli import app
from test_cli_sweep import small

runner = CliRunner()


def lstm_demo_without_dask(args: list[str], cwd) -> subprocess.CompletedProcess:
    """``lstm-demo ARGS`` in a fresh interpreter where ``import distributed`` fails, as without the extra."""
    code = ("import sys; sys.modules['distributed'] = None; sys.argv = ['lstm-demo', *sys.argv[1:]]; "
            "from lstm_cli.__main__ import main; main()")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


def test_scheduler_without_the_extra_is_one_line_and_exit_2(tmp_path):
    path = small(tmp_path)
    done = lstm_demo_without_dask(["sweep", str(path), "--scheduler", "local:2", "--out", "runs"], tmp_path)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        'lstm-demo: error: --scheduler needs Dask, which is not installed: pip install "lstm-demo[dask]" '
        '(in a checkout: pip install -e ".[dask]")']
    assert done.stdout == "" and not (tmp_path / "runs").exists()


@pytest.mark.parametrize("args, message", [
    (["--scheduler", "localhost:8786"], "--scheduler localhost:8786: expected local:N or a Dask scheduler "
                                        "address such as tcp://HOST:PORT"),
    (["--scheduler", "local:0"], "--scheduler local:0: expected local:N with N >= 1 worker processes"),
    (["--scheduler", "local:two"], "--scheduler local:two: expected local:N with N >= 1 worker processes"),
    (["--scheduler-file", "missing.json"], "--scheduler-file missing.json: no such file"),
    (["--scheduler", "local:2", "--scheduler-file", "s.json"], "give exactly one of --scheduler ADDRESS and "
                                                               "--scheduler-file PATH"),
    (["--scheduler", "local:2", "--jobs", "2"], "--jobs sets the local worker processes"),
])
def test_a_bad_scheduler_is_refused_before_anything_runs(tmp_path, args, message):
    path = small(tmp_path)
    result = runner.invoke(app, ["sweep", str(path), *args, "--out", str(tmp_path / "runs")])
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1 and message in result.stderr, result.stderr
    assert not (tmp_path / "runs").exists()


NO_DASK_SCRIPT = """
import json, sys
from typer.testing import CliRunner
from lstm_cli.cli import app

runner = CliRunner()
commands = [
    ["--help"],
    ["gradients", "--gap", "3", "--batch", "2", "--hidden", "4", "--format", "json"],
    ["train", "--gap", "3", "--hidden", "4", "--batch", "4", "--steps", "2", "--eval-every", "1",
     "--eval-size", "4", "--out", sys.argv[2], "--format", "json"],
    ["sweep", sys.argv[1], "--jobs", "1", "--out", sys.argv[2], "--format", "jsonl"],
]
for args in commands:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, (args, result.stderr)
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("dask", "distributed"))))
"""


def test_help_gradients_train_and_a_plain_sweep_never_import_dask(tmp_path):
    path = small(tmp_path, steps=2)
    done = subprocess.run([sys.executable, "-c", NO_DASK_SCRIPT, str(path), str(tmp_path / "runs")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == []


def test_a_file_that_is_not_a_scheduler_file_is_refused(tmp_path):
    path = small(tmp_path)
    (tmp_path / "s.json").write_text('{"id": "Scheduler-1"}')
    result = runner.invoke(app, ["sweep", str(path), "--scheduler-file", str(tmp_path / "s.json")])
    assert result.exit_code == 2
    assert result.stderr == f'lstm-demo: error: --scheduler-file {tmp_path / "s.json"}: not a Dask scheduler file ' \
                            f'(no "address")\n'
