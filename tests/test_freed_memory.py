"""Freed memory kept for the next allocation (process.reuse_freed_memory): which processes keep
it, and that the memory checks count what they keep as room, not as memory in use."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from lstm_cli import __main__ as entry
from lstm_cli import process
from lstm_cli.cli import app


@pytest.mark.parametrize("argv, trains", [
    (["train", "--gap", "3", "--hidden", "4", "--batch", "4", "--steps", "2", "--eval-size", "4"], True),
    (["gradients", "--gap", "3", "--batch", "4"], False),
    (["scenarios"], False),
    (["--help"], False),
])
def test_the_commands_that_train_keep_freed_memory(tmp_path, monkeypatch, capsys, argv, trains):
    """The program's entry point asks malloc to keep freed memory for train, run and sweep, whose
    steps allocate the same large arrays again and again; the other commands leave it alone."""
    calls = []
    monkeypatch.setattr(process, "reuse_freed_memory", lambda: calls.append(True) or True)
    monkeypatch.setattr(app, "registered_commands", list(app.registered_commands))
    monkeypatch.delenv("_LSTM_DEMO_COMPLETE", raising=False)
    monkeypatch.setattr(sys, "argv", ["lstm-demo", *argv, *(["--out", str(tmp_path)] if trains else [])])
    with pytest.raises(SystemExit) as stop:
        entry.main()
    assert stop.value.code == 0, capsys.readouterr().err
    assert calls == ([True] if trains else [])


def test_the_command_lines_app_alone_leaves_the_process_as_it_is(tmp_path, monkeypatch):
    """Tests and other programs run the app inside their own process: it must not change malloc there."""
    from typer.testing import CliRunner

    calls = []
    monkeypatch.setattr(process, "reuse_freed_memory", lambda: calls.append(True) or True)
    result = CliRunner().invoke(app, ["train", "--gap", "3", "--hidden", "4", "--batch", "4", "--steps", "2",
                                      "--eval-size", "4", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.stderr
    assert calls == []


KEPT = """
import resource, sys
import numpy as np
from lstm_cli import config, process
mapped = int(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmSize"))) << 10
resource.setrlimit(resource.RLIMIT_AS, (mapped + (3 << 30), resource.RLIM_INFINITY))  # the smallest figure
keeping = process.reuse_freed_memory() if sys.argv[1] == "keep" else False
before = config.memory_limit()[0]
big = np.ones((256 << 20) // 8)
del big
print(keeping, process.freed_memory_kept(), before, config.memory_limit()[0], config.address_space_left())
"""


@pytest.mark.parametrize("mode", ["keep", "default"])
def test_memory_kept_counts_as_room_for_the_next_run(mode):
    """After a 256 MB array is freed, a process that keeps freed memory still has it mapped (ulimit -v
    and the available memory count it as used); the limit the checks use gives it back."""
    pytest.importorskip("resource")  # POSIX only
    if not os.path.exists("/proc/self/status"):
        pytest.skip("ulimit -v is counted from /proc/self/status, which this system lacks")
    out = subprocess.run([sys.executable, "-c", KEPT, mode], capture_output=True, text=True, check=True).stdout
    keeping, kept, before, after, mapped_left = out.split()
    kept, before, after, mapped_left = int(kept), int(before), int(after), int(mapped_left)
    if keeping != "True":  # glibc's default (or not glibc): nothing is kept, the array went back
        assert kept == 0 and abs(after - before) < (64 << 20)
        return
    assert kept >= 256 << 20  # the freed array, kept for the next allocation
    assert abs(after - before) < (64 << 20), (before, after)  # the room is the same as before the array
    assert mapped_left + kept >= after  # ulimit -v alone would have lost the 256 MB
