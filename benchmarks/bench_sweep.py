"""Sweep wall times: seed stacks against single runs, and 2 workers against 1 (issues 5, 13, 26).

Two sweeps, each run through the command line, as a user would, in a fresh
temporary directory each time; the machine's load average is printed before
and after (other processes on the same cores lower every figure).

1. Seed stacking (issue 26): the remember-gap scenario's grid, 10 settings (gap
   5, 10, 20, 50, 100 x rnn, lstm at H = 32) over 5 seeds, timed with its seeds
   stacked (``--stack``) and with ``--no-stack`` (the default), at ``--jobs 1``. Target:
   stacked >= 2.5x unstacked. The two sweeps' records are compared, every number
   but the wall times: stacking must not change a result.
2. Workers (issues 5 and 13): 16 equal runs (the adding task never stops early
   within its budget), ``--jobs 1`` against ``--jobs 2`` (target >= 1.8x) and,
   with ``--scheduler local:2``, a Dask LocalCluster of 2 worker processes
   (target >= 1.7x; the cluster's start-up and shutdown are part of its wall
   time), each stacked and with ``--no-stack``.

    python benchmarks/bench_sweep.py                         # both, ~5 min on 2 idle cores
    python benchmarks/bench_sweep.py --scheduler local:2     # also Dask; needs pip install -e ".[dask]"
    python benchmarks/bench_sweep.py --only stack            # or: --only workers
    python benchmarks/bench_sweep.py --tiny                  # seconds: checks the script, not the speed
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

STACK_SCENARIO = """\
description: remember-gap's grid at H = 32 over 5 seeds, for bench_sweep.py
task: remember
model: {{kind: lstm, hidden: {hidden}}}
train: {{steps: {steps}, lr: 1e-3{train}}}
sweep:
  gap: {gaps}
  model: [rnn, lstm]
  seed: 0..{last_seed}
"""

WORKERS_SCENARIO = """\
description: 16 equal runs for bench_sweep.py
task: adding
gap: {gap}
model: {{kind: lstm, hidden: {hidden}}}
train: {{steps: {steps}, eval_every: 50, eval_size: {eval_size}, probe_size: 8, batch: 32}}
sweep:
  seed: 0..{last_seed}
"""

FULL = {"stack": dict(hidden=32, steps=1500, train="", gaps="[5, 10, 20, 50, 100]", last_seed=4),
        "workers": dict(gap=40, hidden=16, steps=1200, eval_size=64, last_seed=15)}
TINY = {"stack": dict(hidden=4, steps=12, train=", eval_every: 4, eval_size: 8, probe_size: 2, batch: 4",
                      gaps="[2, 3]", last_seed=2),
        "workers": dict(gap=3, hidden=4, steps=8, eval_size=8, last_seed=3)}
VOLATILE = ("wall_time", "run_dir")  # what may differ between two sweeps of the same runs


def lstm_demo() -> list[str]:
    exe = shutil.which("lstm-demo", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "lstm_cli"]


def time_sweep(scenario: Path, out: Path, options: list[str]) -> tuple[float, dict[str, dict]]:
    """(wall seconds, {run key: result.json}) of one sweep into a fresh ``out``."""
    start = time.perf_counter()
    done = subprocess.run([*lstm_demo(), "sweep", str(scenario), *options, "--out", str(out), "--format", "jsonl"],
                          capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"sweep {' '.join(options)} failed:\n{done.stderr}")
    sweep_dir = out / scenario.stem
    records = {p.name: json.loads((p / "result.json").read_text()) for p in sorted(sweep_dir.iterdir()) if p.is_dir()}
    return wall, records


def comparable(records: dict[str, dict]) -> dict[str, dict]:
    return {key: {k: v for k, v in record.items() if k not in VOLATILE} for key, record in records.items()}


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def run_settings(folder: Path, name: str, text: str, settings: dict[str, list[str]], repeat: int,
                 runs: int) -> tuple[dict[str, float], dict[str, dict]]:
    """Best wall time of each setting over ``repeat`` tries, and each setting's records."""
    scenario = folder / f"{name}.yaml"
    scenario.write_text(text)
    best: dict[str, float] = {}
    records: dict[str, dict] = {}
    for attempt in range(repeat):
        for label, options in settings.items():
            out = folder / f"{name}-{len(best)}-{attempt}-{label.replace(' ', '_').replace(':', '_')}"
            wall, records[label] = time_sweep(scenario, out, options)
            assert len(records[label]) == runs, f"{label}: {len(records[label])} records, expected {runs}"
            per_run = sum(r["wall_time"] for r in records[label].values())
            print(f"  {label:32} {runs} runs in {wall:7.2f} s wall (sum of the runs' wall times {per_run:7.2f} s)",
                  flush=True)
            best[label] = min(best.get(label, wall), wall)
            shutil.rmtree(out)
    return best, records


def same_results(records: dict[str, dict]) -> str:
    """"identical" when every setting's records agree in every number but the wall times."""
    labels = list(records)
    first = comparable(records[labels[0]])
    differ = [label for label in labels[1:] if comparable(records[label]) != first]
    return "identical" if not differ else f"DIFFERENT in {', '.join(differ)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, help="training steps per run (default: 1500 stack, 1200 workers)")
    parser.add_argument("--repeat", type=int, default=1, help="time each setting this many times (best kept)")
    parser.add_argument("--scheduler", help="also time the sweeps on this Dask scheduler (e.g. local:2)")
    parser.add_argument("--only", choices=("stack", "workers"), help="run one of the two benchmarks")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes: checks that the script works, in seconds")
    args = parser.parse_args()
    sizes = TINY if args.tiny else FULL
    print(f"cores: {os.cpu_count()}; load average before: {load()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.only in (None, "stack"):
            size = dict(sizes["stack"], **({"steps": args.steps} if args.steps else {}))
            runs = len(json.loads(size["gaps"])) * 2 * (size["last_seed"] + 1)
            print(f"seed stacks: remember, gaps {size['gaps']}, rnn and lstm at H = {size['hidden']}, "
                  f"seeds 0..{size['last_seed']}, {size['steps']} steps", flush=True)
            settings = {"--jobs 1 --no-stack": ["--jobs", "1", "--no-stack"], "--jobs 1 (stacked)": ["--jobs", "1", "--stack"],
                        "--jobs 2 --no-stack": ["--jobs", "2", "--no-stack"], "--jobs 2 (stacked)": ["--jobs", "2", "--stack"]}
            if args.scheduler:
                settings[f"--scheduler {args.scheduler} --no-stack"] = ["--scheduler", args.scheduler, "--no-stack"]
                settings[f"--scheduler {args.scheduler} (stacked)"] = ["--scheduler", args.scheduler, "--stack"]
            best, records = run_settings(folder, "stack", STACK_SCENARIO.format(**size), settings, args.repeat, runs)
            print(f"  records of every setting: {same_results(records)} (all but wall_time and run_dir)")
            print(f"  stacked over unstacked, --jobs 1: {best['--jobs 1 --no-stack'] / best['--jobs 1 (stacked)']:.2f}x "
                  f"(target >= 2.5x)")
            for label in settings:
                if not label.startswith("--jobs 1"):
                    base = "--jobs 1 --no-stack" if "--no-stack" in label else "--jobs 1 (stacked)"
                    print(f"  {label} over {base}: {best[base] / best[label]:.2f}x")
        if args.only in (None, "workers"):
            size = dict(sizes["workers"], **({"steps": args.steps} if args.steps else {}))
            runs = size["last_seed"] + 1
            print(f"workers: {runs} equal runs, adding gap {size['gap']}, lstm H = {size['hidden']}, "
                  f"{size['steps']} steps", flush=True)
            targets = {"--jobs 2": 1.8} | ({f"--scheduler {args.scheduler}": 1.7} if args.scheduler else {})
            settings = {}
            for mode, flag in (("--no-stack", ["--no-stack"]), ("(stacked)", ["--stack"])):
                settings[f"--jobs 1 {mode}"] = ["--jobs", "1", *flag]
                settings[f"--jobs 2 {mode}"] = ["--jobs", "2", *flag]
                if args.scheduler:
                    settings[f"--scheduler {args.scheduler} {mode}"] = ["--scheduler", args.scheduler, *flag]
            best, records = run_settings(folder, "workers", WORKERS_SCENARIO.format(**size), settings, args.repeat,
                                         runs)
            print(f"  records of every setting: {same_results(records)} (all but wall_time and run_dir)")
            for mode in ("--no-stack", "(stacked)"):
                for label, target in targets.items():
                    print(f"  {label} {mode} over --jobs 1 {mode}: "
                          f"{best[f'--jobs 1 {mode}'] / best[f'{label} {mode}']:.2f}x (target >= {target}x)")
    print(f"load average after: {load()}")


if __name__ == "__main__":
    main()
