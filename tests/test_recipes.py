"""docs/contributing.md's "Add an option" and "Add a task", followed literally: the code blocks of
each recipe are applied, at the places its steps name, to a copy of the package, and the new option
or task is then used through the command line, model text, scenario files and ``--set``."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "contributing.md"


def recipe_blocks(title: str) -> list[str]:
    """The fenced code blocks of the section ``## title``, dedented, in order."""
    text = GUIDE.read_text()
    section = text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"\n( *)```python\n(.*?)\n\1```", section, flags=re.S)
    return [re.sub(rf"(?m)^{indent}", "", body) for indent, body in blocks]


def _indented(block: str, spaces: int) -> str:
    return "".join(" " * spaces + line + "\n" if line else "\n" for line in block.splitlines())


def _insert(path: Path, anchor: str, text: str, after: bool = False, count: int = 1) -> None:
    """Put ``text`` before (or after) each of the ``count`` lines equal to ``anchor``."""
    lines = path.read_text().splitlines(keepends=True)
    hits = [i for i, line in enumerate(lines) if line.rstrip("\n") == anchor]
    assert len(hits) == count, (path.name, anchor, len(hits))
    for i in reversed(hits):
        lines.insert(i + 1 if after else i, text)
    path.write_text("".join(lines))


@pytest.fixture
def copy(tmp_path):
    """A copy of the package and a way to run its command line."""
    shutil.copytree(ROOT / "lstm_cli", tmp_path / "pkg" / "lstm_cli",
                    ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "pkg"), "COLUMNS": "300", "NO_COLOR": "1", "TERM": "dumb"}

    def run(*args: str) -> subprocess.CompletedProcess:
        proc = subprocess.run([sys.executable, "-m", "lstm_cli", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc

    run.package = tmp_path / "pkg" / "lstm_cli"
    run.dir = tmp_path
    return run


def _scenario(where: Path, name: str, body: str) -> str:
    path = where / name
    path.write_text(body)
    return str(path)


SCENARIO = "task: {task}\ngap: 4\nmodel: {model}\ntrain: {{steps: 2, eval_size: 8, batch: 4}}\nsweep:\n  seed: [0]\n"


def test_the_recipes_have_their_blocks():
    assert len(recipe_blocks("Add an option")) == 3
    assert len(recipe_blocks("Add a task")) == 2


def test_add_an_option_by_the_recipe(copy):
    row, settings, parameter = recipe_blocks("Add an option")
    package = copy.package
    assert copy("gradients", "--help").stdout.count("--toy-scale") == 0  # the copy starts without it
    _insert(package / "config.py",
            '    Field("gradients.batch", "int", "sequences in the gradient-probe batch (the one probe: as train.probe_size)",',
            _indented(row, 4))
    rnn = package / "cells" / "rnn.py"
    rnn.write_text(rnn.read_text().replace('    settings = Cell.settings + ("activation",)\n', _indented(settings, 4)))
    _insert(package / "cli.py", '    dtype: DtypeOpt = config.default("model.dtype"),', _indented(parameter, 4), count=2)

    for command in ("gradients", "train"):
        shown = " ".join(copy(command, "--help").stdout.replace("│", " ").split())
        assert "--toy-scale" in shown and "Multiplies the toy's input weights (default 1)." in shown, command
    small = ("--task", "remember", "--gap", "4", "--batch", "4", "--hidden", "4", "--format", "json")
    given = copy("gradients", "-m", "rnn", "--toy-scale", "2", *small)
    assert given.returncode == 0, given.stderr
    assert "toy_scale=2" in given.stdout
    in_text = copy("gradients", "-m", "rnn:toy_scale=3", *small)
    assert in_text.returncode == 0 and "toy_scale=3" in in_text.stdout, in_text.stderr
    bad = copy("gradients", "-m", "rnn", "--toy-scale", "0", *small)
    assert bad.returncode == 2 and "model.toy_scale: must be > 0, got 0" in bad.stderr, bad.stderr
    other = copy("gradients", "-m", "lstm:toy_scale=2", *small)
    assert other.returncode == 2 and "toy_scale" in other.stderr and "rnn" in other.stderr, other.stderr

    good = _scenario(copy.dir, "good.yaml", SCENARIO.format(task="remember", model="{kind: rnn, hidden: 4}"))
    assert copy("sweep", good, "--dry-run", "--out", "o", "--set", "model.toy_scale=3").returncode == 0
    refused = copy("sweep", good, "--dry-run", "--out", "o", "--set", "model.toy_scale=-1")
    assert refused.returncode == 2 and "model.toy_scale: must be > 0" in refused.stderr, refused.stderr
    wrong = _scenario(copy.dir, "wrong.yaml",
                      SCENARIO.format(task="remember", model="{kind: rnn, hidden: 4, toy_scale: -2}"))
    refused = copy("sweep", wrong, "--dry-run", "--out", "o")
    assert refused.returncode == 2 and "wrong.yaml" in refused.stderr and "toy_scale" in refused.stderr, refused.stderr


def test_add_a_task_by_the_recipe(copy):
    generator, row = recipe_blocks("Add a task")
    tasks = copy.package / "tasks.py"
    _insert(tasks, "TASKS: dict[str, Task] = {", generator + "\n\n")
    _insert(tasks, "    for t in (", row + "\n", after=True)

    shown = " ".join(copy("train", "--help").stdout.replace("│", " ").split())
    assert "toy 7" in shown  # its step budget, in --steps' help
    assert re.search(r"\btoy\b.*\bremember\b", shown)  # in --task's list
    probe = copy("gradients", "--task", "toy", "--gap", "5", "--batch", "4", "--hidden", "4", "--format", "json")
    assert probe.returncode == 0, probe.stderr
    trained = copy("train", "--task", "toy", "--gap", "3", "--hidden", "4", "--batch", "4", "--eval-size", "8",
                   "--eval-every", "2", "--out", "runs", "--format", "json", "--quiet")
    assert trained.returncode == 0, trained.stderr
    record = json.loads(trained.stdout)
    assert record["task"] == "toy" and record["max_steps"] == 7 and record["chance"] == 0.5

    good = _scenario(copy.dir, "good.yaml", SCENARIO.format(task="remember", model="{kind: rnn, hidden: 4}"))
    swept = copy("sweep", good, "--dry-run", "--out", "o", "--set", "task=toy")
    assert swept.returncode == 0, swept.stderr
    typo = _scenario(copy.dir, "typo.yaml", SCENARIO.format(task="tyo", model="{kind: rnn, hidden: 4}"))
    refused = copy("sweep", typo, "--dry-run", "--out", "o")
    assert refused.returncode == 2 and "typo.yaml" in refused.stderr and "'toy'" in refused.stderr, refused.stderr
