"""Wall time to success of `lstm-demo train` with its default settings, over seeds.

Acceptance 1 of issue 4: `lstm-demo train --task remember --gap 50 --model lstm`
must succeed (held-out accuracy >= 0.99) for seeds 0-4 with a median wall time
<= 10 s on a 2-core machine. Each seed runs as its own `lstm-demo train`
process, one after the other (never two at once, so timings are not shared
cores), with BLAS pinned to one thread unless --threads says otherwise.
Printed per seed: status, success, steps, the final held-out metric, the
run's own wall time (result.json: training + evaluations + probes) and the
process time (including interpreter start-up and imports); then the success
count and the median wall time.

--overhead also runs one seed in-process and reports the share of the wall
time spent in held-out evaluation and gradient probes (they must be cheap
relative to training).

    python benchmarks/bench_train.py                      # remember, gap 50, lstm, seeds 0-4
    python benchmarks/bench_train.py --model rnn
    python benchmarks/bench_train.py --task adding --gap 100 --seeds 0
    python benchmarks/bench_train.py --overhead
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _g(value) -> str:
    return "-" if value is None else f"{float(value):.3g}"


def run_seed(args, seed: int, out: Path, env: dict) -> dict:
    cmd = [sys.executable, "-m", "lstm_cli", "train", "--task", args.task, "--gap", str(args.gap),
           "--model", args.model, "--seed", str(seed), "--out", str(out), "--format", "json", "--quiet",
           *args.extra]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        sys.exit(f"seed {seed}: exit {proc.returncode}: {proc.stderr.strip()}")
    record = json.loads(proc.stdout)
    record["process_time"] = elapsed
    return record


def overhead(args, env_threads: str) -> None:
    """Share of one in-process run's time spent in evaluation and probes."""
    from lstm_cli import models, probes, runs, train

    spent = {"evaluate": 0.0, "probe": 0.0}

    def timed(name, fn):
        def wrapper(*a, **k):
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                spent[name] += time.perf_counter() - t
        return wrapper

    train.evaluate = timed("evaluate", train.evaluate)
    probes.probe = timed("probe", probes.probe)
    config = train.TrainConfig(task=args.task, gap=args.gap, model=models.parse_model(args.model), seed=0)
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        record = runs.run_training(config, Path(out))
        total = time.perf_counter() - start
    evals = record["steps"] // config.resolved().eval_every + 1
    print(f"overhead (seed 0, in-process, BLAS threads {env_threads}): {record['steps']} steps in {total:.2f} s; "
          f"{evals} evaluations: held-out {spent['evaluate']:.3f} s ({100 * spent['evaluate'] / total:.1f}%), "
          f"probes {spent['probe']:.3f} s ({100 * spent['probe'] / total:.1f}%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="remember")
    parser.add_argument("--gap", type=int, default=50)
    parser.add_argument("--model", default="lstm")
    parser.add_argument("--seeds", default="0-4", help="a range like 0-4 or a list like 0,3")
    parser.add_argument("--threads", default="1", help="BLAS threads per run (OMP/OPENBLAS/MKL_NUM_THREADS)")
    parser.add_argument("--overhead", action="store_true", help="also measure evaluation and probe overhead")
    parser.add_argument("extra", nargs="*", help="more `lstm-demo train` options, after --")
    args = parser.parse_args()
    if "-" in args.seeds:
        lo, hi = map(int, args.seeds.split("-"))
        seeds = list(range(lo, hi + 1))
    else:
        seeds = [int(s) for s in args.seeds.split(",")]
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = args.threads
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"lstm-demo train --task {args.task} --gap {args.gap} --model {args.model} {' '.join(args.extra)}"
          f"(defaults), seeds {seeds}, sequential, BLAS threads {args.threads}, "
          f"{os.cpu_count()} cores, load average {load:.2f} at start")
    records = []
    with tempfile.TemporaryDirectory() as out:
        for seed in seeds:
            r = run_seed(args, seed, Path(out), env)
            records.append(r)
            metric = r["metric"]
            grad = r.get("gradient") or {}
            print(f"  seed {seed}: {r['status']:<9} success={str(r['success']):<5} steps {r['steps']:>5}/"
                  f"{r['max_steps']}  {metric} {float(r.get(metric, 'nan')):.4f}  wall {r['wall_time']:6.2f} s  "
                  f"process {r['process_time']:6.2f} s  dh ratio {grad.get('steps_back_first_step')} steps back: "
                  f"{_g(grad.get('dh_ratio_first_step_before'))} -> {_g(grad.get('dh_ratio_first_step'))}", flush=True)
    ok = [r for r in records if r["success"]]
    print(f"success: {len(ok)}/{len(records)}")
    if ok:
        print(f"median wall time to success: {statistics.median(r['wall_time'] for r in ok):.2f} s "
              f"(process, with start-up: {statistics.median(r['process_time'] for r in ok):.2f} s); "
              f"median steps {statistics.median(r['steps'] for r in ok):g}")
    print(f"median wall time over all runs: {statistics.median(r['wall_time'] for r in records):.2f} s")
    if args.overhead:
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = args.threads  # only effective before numpy is imported, which is now
        overhead(args, args.threads)


if __name__ == "__main__":
    main()
