"""benchmarks/bench_sweep.py and bench_stack.py run at tiny sizes (their figures are measured on an idle machine, not here)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_sweep.py"


def test_bench_sweep_tiny_times_stacked_and_unstacked_with_the_same_records():
    done = subprocess.run([sys.executable, str(BENCH), "--tiny", "--only", "stack"], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for label in ("--jobs 1 --no-stack", "--jobs 1 (stacked)", "--jobs 2 --no-stack", "--jobs 2 (stacked)"):
        assert re.search(rf"^  {re.escape(label)} +12 runs in +\d+\.\d\d s wall", out, re.M), (label, out)
    assert "records of every setting: identical" in out, out
    assert re.search(r"stacked over unstacked, --jobs 1: \d+\.\d\dx \(target >= 2\.5x\)", out), out


def test_bench_stack_tiny_compares_stacked_and_alone_steps():
    done = subprocess.run([sys.executable, str(BENCH.parent / "bench_stack.py"), "--tiny"], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines() if line.split()[:1] in (["rnn"], ["lstm"], ["gru"])]
    assert [row[0] for row in rows] == ["rnn", "lstm", "gru"], done.stdout
    # kind dtype H B gap | alone s, stacked s, gain | same | steps per second alone, stacked
    assert all(row[8] == "yes" and float(row[7]) > 0 and float(row[10]) > 0 for row in rows), done.stdout
