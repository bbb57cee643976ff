"""Whole-process wall time of lstm-demo's commands against the bare imports they cannot avoid.

    python benchmarks/bench_startup.py [--runs 9] [--gap 50]

Two pairs, every command interleaved with the others so that a change in machine
load hits all alike:

    A1: lstm-demo gradients --gap 50                        (stdout discarded)
    B1: python -c "import numpy, typer, rich, yaml"         (the dependencies' import floor)
    A2: lstm-demo --help
    B2: python -c "import typer"

It prints every wall time, the median of each and the ratios A1/B1 (target <= 1.5)
and A2/B2 (target <= 1.3). The child processes inherit the environment; on a shared
machine say under what load you measured (uptime's load average is printed).
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


PAIRS = (("gradients", "import numpy, typer, rich, yaml", 1.5), ("help", "import typer", 1.3))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--gap", type=int, default=50)
    args = parser.parse_args()

    commands = {"gradients": lstm_demo_command() + ["gradients", "--gap", str(args.gap)],
                "help": lstm_demo_command() + ["--help"]}
    for name, imports, _ in PAIRS:
        commands[f"floor:{name}"] = [sys.executable, "-c", imports]
    for cmd in commands.values():
        wall_time(cmd)  # warm the file cache and the .pyc files; not counted
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.runs):
        for name, cmd in commands.items():
            times[name].append(wall_time(cmd))

    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {os.cpu_count()} cpus; {args.runs} runs each")
    for name, cmd in commands.items():
        runs = " ".join(f"{t * 1000:.0f}" for t in times[name])
        print(f"{statistics.median(times[name]) * 1000:6.0f} ms median  {shlex.join(cmd)}   runs (ms): {runs}")
    for name, _, target in PAIRS:
        ratio = statistics.median(times[name]) / statistics.median(times[f"floor:{name}"])
        print(f"ratio {name} / its imports {ratio:.2f} (target <= {target})")


if __name__ == "__main__":
    main()
