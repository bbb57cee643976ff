"""Shell completion: a script for the shell, bundled scenario names and task names as completions."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lstm_cli.scenario import bundled

LSTM_DEMO = str(Path(sys.executable).parent / "lstm-demo")


def complete(words: str, cword: int, instruction: str = "bash_complete") -> subprocess.CompletedProcess:
    env = {**os.environ, "_LSTM_DEMO_COMPLETE": instruction, "COMP_WORDS": words, "COMP_CWORD": str(cword)}
    return subprocess.run([LSTM_DEMO], env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("instruction", ["bash_source", "source_bash"])
def test_a_completion_script_is_printed(instruction):
    proc = complete("", 0, instruction)
    assert proc.returncode == 0, proc.stderr
    assert "complete -o default -F _lstm_demo_completion lstm-demo" in proc.stdout


def test_run_completes_to_the_bundled_scenario_names():
    proc = complete("lstm-demo run ", 2)
    names = [name for name, _, _ in bundled()]
    assert len(names) >= 6 and "vanishing" in names
    assert proc.stdout.split() == names, proc.stderr


def test_a_prefix_narrows_the_scenario_names():
    assert complete("lstm-demo sweep rem", 2).stdout.split() == ["remember-gap"]


def test_task_completes_to_the_task_names():
    from lstm_cli.tasks import TASKS

    assert complete("lstm-demo gradients --task ", 3).stdout.split() == list(TASKS)
