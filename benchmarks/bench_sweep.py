"""Wall time of a 16-run sweep with --jobs 1 and --jobs 2, and the speed-up (issue 5, acceptance 4).

Each run is the same amount of work (the adding task never stops early within
its budget), so the ideal speed-up with 2 workers on 2 free cores is 2x; the
target is >= 1.8x. The sweep is run through the command line, as a user would,
in a fresh temporary directory each time. The machine's load average is printed
before and after: other processes on the same cores lower the figure.

With ``--scheduler local:2`` the same sweep also runs on a Dask LocalCluster of 2
worker processes (issue 13, acceptance 4: target >= 1.7x over --jobs 1; the
cluster's start-up and shutdown are part of its wall time, as for a user).

    python benchmarks/bench_sweep.py                # 16 runs of ~2 s
    python benchmarks/bench_sweep.py --steps 200    # quicker, noisier
    python benchmarks/bench_sweep.py --scheduler local:2   # needs: pip install -e ".[dask]"
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCENARIO = """\
description: 16 equal runs for bench_sweep.py
task: adding
gap: 40
model: {{kind: lstm, hidden: 16}}
train: {{steps: {steps}, eval_every: 50, eval_size: 64, probe_size: 8, batch: 32}}
sweep:
  seed: 0..15
"""


def lstm_demo() -> list[str]:
    exe = shutil.which("lstm-demo", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "lstm_cli"]


def time_sweep(folder: Path, label: str, options: list[str]) -> tuple[float, list[dict]]:
    out = folder / label.replace(" ", "_").replace(":", "_")
    start = time.perf_counter()
    done = subprocess.run([*lstm_demo(), "sweep", str(folder / "bench.yaml"), *options,
                           "--out", str(out), "--format", "jsonl"], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"sweep {label} failed:\n{done.stderr}")
    records = [json.loads((p / "result.json").read_text()) for p in sorted((out / "bench").iterdir()) if p.is_dir()]
    return wall, records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1200, help="training steps per run")
    parser.add_argument("--repeat", type=int, default=1, help="time each setting this many times (best kept)")
    parser.add_argument("--scheduler", help="also time the sweep on this Dask scheduler (e.g. local:2)")
    args = parser.parse_args()
    settings = {"--jobs 1": ["--jobs", "1"], "--jobs 2": ["--jobs", "2"]}
    targets = {"--jobs 2": 1.8}
    if args.scheduler:
        settings[f"--scheduler {args.scheduler}"] = ["--scheduler", args.scheduler]
        targets[f"--scheduler {args.scheduler}"] = 1.7
    print(f"cores: {os.cpu_count()}; load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    best = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "bench.yaml").write_text(SCENARIO.format(steps=args.steps))
        for attempt in range(args.repeat):
            for label, options in settings.items():
                wall, records = time_sweep(folder, f"{label} {attempt}", options)
                assert len(records) == 16 and all(r["status"] == "completed" for r in records)
                per_run = sum(r["wall_time"] for r in records)
                print(f"{label}: 16 runs in {wall:6.2f} s wall (sum of per-run training times "
                      f"{per_run:6.2f} s)")
                best[label] = min(best.get(label, wall), wall)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for label, target in targets.items():
        print(f"speed-up {label} over --jobs 1: {best['--jobs 1'] / best[label]:.2f}x (target >= {target}x)")


if __name__ == "__main__":
    main()
