"""Whole-process wall time of ``lstm-demo gradients`` against the bare imports it cannot avoid.

    python benchmarks/bench_startup.py [--runs 5] [--gap 50]

Runs, interleaved so that a change in machine load hits both alike,

    A: lstm-demo gradients --gap 50 --format json          (stdout discarded)
    B: python -c "import numpy, typer, rich, yaml"          (the dependencies' import floor)

and prints every wall time, the median of each and the ratio A / B (target <= 1.25,
issue 3, acceptance 7). The child processes inherit the environment; on a shared
machine run it with OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 and say under what
load you measured (uptime's load average is printed).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def wall_time(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def lstm_demo_command() -> list[str]:
    """The installed console script next to this interpreter, else ``python -m lstm_cli``."""
    script = Path(sys.executable).with_name("lstm-demo")
    if script.exists():
        return [str(script)]
    found = shutil.which("lstm-demo")
    return [found] if found else [sys.executable, "-m", "lstm_cli"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--gap", type=int, default=50)
    args = parser.parse_args()

    demo = lstm_demo_command() + ["gradients", "--gap", str(args.gap), "--format", "json"]
    floor = [sys.executable, "-c", "import numpy, typer, rich, yaml"]
    wall_time(demo), wall_time(floor)  # warm the file cache and the .pyc files; not counted

    times: dict[str, list[float]] = {"demo": [], "floor": []}
    for _ in range(args.runs):
        times["demo"].append(wall_time(demo))
        times["floor"].append(wall_time(floor))

    load = os.getloadavg()
    threads = {k: os.environ.get(k, "unset") for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {os.cpu_count()} cpus; "
          + " ".join(f"{k}={v}" for k, v in threads.items()))
    print(f"A  {shlex.join(demo)}")
    print(f"B  {shlex.join(floor)}")
    for name, label in (("demo", "A"), ("floor", "B")):
        runs = " ".join(f"{t * 1000:6.0f}" for t in times[name])
        print(f"{label}  median {statistics.median(times[name]) * 1000:6.0f} ms   runs (ms): {runs}")
    ratio = statistics.median(times["demo"]) / statistics.median(times["floor"])
    print(f"ratio A/B {ratio:.2f} (target <= 1.25)")


if __name__ == "__main__":
    main()
