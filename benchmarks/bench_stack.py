"""Training steps of S seeds stacked (lstm_cli/stacked.py) against the same S runs one after another.

For each cell (kind, dtype, H, batch B, gap), S runs of ``steps`` training steps are
trained alone (``train.train``, one after another) and as one stack
(``stacked.train_stacked``), one BLAS thread, in this process; evaluations only at
step 0 and at the end, so the figure is the training step's. Freed memory is kept for the
next allocation, as in the commands that train (``--no-reuse-memory``: glibc's default,
under which a stack's arrays of over 4 MB cost fresh pages every step). The ratio
alone / stacked is what stacking gains there (> 1: stacking is faster); steps per second
count every run's steps (S x steps over the wall time, evaluations included). It tells where
``sweep --stack`` (every group of 2 or more seeds as one stack) pays, and the events of
both are compared (float64: bit for bit) so a fast but wrong stack cannot pass.

    python benchmarks/bench_stack.py                  # the grid below, S = 5; a few minutes idle
    python benchmarks/bench_stack.py --stack 2        # pairs
    python benchmarks/bench_stack.py --long-lag       # docs/long-lag.md's recipe: steps per second
    python benchmarks/bench_stack.py --tiny           # seconds: checks the script, not the speed
"""

from __future__ import annotations

import argparse
import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import time  # noqa: E402

from lstm_cli import process, stacked, train  # noqa: E402
from lstm_cli.models import ModelSpec  # noqa: E402
from lstm_cli.train import TrainConfig  # noqa: E402

GRID = [(kind, dtype, hidden, batch, gap) for kind in ("rnn", "lstm", "gru") for dtype in ("float64", "float32")
        for hidden, batch, gap in ((32, 64, 5), (32, 64, 50), (32, 64, 100), (128, 64, 50), (32, 256, 50))]
TINY = [(kind, "float64", 4, 4, 3) for kind in ("rnn", "lstm", "gru")]
# docs/long-lag.md: remember at gap 1000, lstm:chrono=1000,dtype=float32, Adam 3e-3, batch 64
LONG_LAG = [("lstm", "float32", 32, 64, 1000)]
LONG_LAG_MODEL = {"chrono": 1000.0}


def configs(kind, dtype, hidden, batch, gap, steps, seeds, model=None, lr=None):
    spec = ModelSpec(kind=kind, hidden=hidden, dtype=dtype, **(model or {}))
    return [TrainConfig(task="remember", gap=gap, model=spec, seed=seed, batch=batch, steps=steps, lr=lr,
                        eval_every=steps, eval_size=8, probe_size=4) for seed in seeds]


def timed(function):
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def comparable(event):
    if isinstance(event, train.Finished):
        return ("finished", event.step, [v.tobytes() for v in event.params.values()])
    if isinstance(event, train.Evaluation):
        return ("evaluation", repr(event.to_dict()))
    return repr(event)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", type=int, default=5, help="seeds per stack (S)")
    parser.add_argument("--steps", type=int, default=60, help="training steps per run")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many timings")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes: checks the script, in seconds")
    parser.add_argument("--long-lag", action="store_true", help="only the gap-1000 recipe of docs/long-lag.md")
    parser.add_argument("--reuse-memory", action=argparse.BooleanOptionalAction, default=True,
                        help="call process.reuse_freed_memory() first, as the commands that train do")
    args = parser.parse_args()
    malloc = "freed memory reused" if args.reuse_memory and process.reuse_freed_memory() else "glibc default"
    grid, steps, repeat = (TINY, 3, 1) if args.tiny else (LONG_LAG, args.steps, args.repeat) if args.long_lag \
        else (GRID, args.steps, args.repeat)
    model, lr = (LONG_LAG_MODEL, 3e-3) if args.long_lag else (None, None)
    seeds = list(range(args.stack))
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; S = {args.stack}, "
          f"{steps} steps per run, best of {repeat}; malloc: {malloc}")
    print(f"{'kind':5} {'dtype':8} {'H':>4} {'B':>4} {'gap':>4}  {'alone s':>8} {'stacked s':>9}  {'gain':>5}  same"
          f"  {'steps/s alone':>13} {'stacked':>8}")
    for kind, dtype, hidden, batch, gap in grid:
        cfgs = configs(kind, dtype, hidden, batch, gap, steps, seeds, model, lr)
        best_alone = best_stacked = float("inf")
        for _ in range(repeat):
            t_alone, alone = timed(lambda: [[comparable(e) for e in train.train(c)] for c in cfgs])
            t_stacked, events = timed(lambda: list(stacked.train_stacked(cfgs)))
            best_alone, best_stacked = min(best_alone, t_alone), min(best_stacked, t_stacked)
        together = [[comparable(e) for i, e in events if i == k] for k in range(len(cfgs))]
        same = "yes" if together == alone else ("NO" if dtype == "float64" else "f32")
        print(f"{kind:5} {dtype:8} {hidden:4d} {batch:4d} {gap:4d}  {best_alone:8.3f} {best_stacked:9.3f}  "
              f"{best_alone / best_stacked:5.2f}  {same:4}  {len(seeds) * steps / best_alone:13.1f} "
              f"{len(seeds) * steps / best_stacked:8.1f}", flush=True)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
