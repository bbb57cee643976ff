"""Time one training step's forward + backward: numpy (lstm_cli.models) against PyTorch.

    python benchmarks/bench_step.py            # the full grid and the long cells, single-threaded
    python benchmarks/bench_step.py --cells long --repeats 3   # only the long cells
    python benchmarks/bench_step.py --quick    # a smoke run: two small cells, few repeats
    python benchmarks/bench_step.py --threads 2

One step is what training does per batch: ``models.forward`` -> the loss and
its gradient (``losses.loss_and_grad``) -> ``models.backward``, on
x (B, T, D=8), cross-entropy over K=4 classes at the last step. PyTorch does
the same with ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` (batch_first=True) + ``nn.Linear`` and
``loss.backward()``. The grid: model {rnn, lstm, gru} x dtype {float32, float64} x
B {32, 128} x H {32, 128} x T {50, 200}, and the long cells (the long-lag
scenario's sizes) B=64, T=1000, H {32, 128} per (model, dtype). Each cell reports the median of
repeated runs, numpy and torch interleaved so that a burst of load on the
machine hits both; the ratio is numpy / torch (below 1: numpy is faster), and
the geometric mean of the ratio is printed per (model, dtype).

Close to the limit: for H=128 cells the table also gives the fraction of
numpy's single-call GEMM peak the numpy step reaches: the step's matmul FLOPs
(forward 2BTG H(H+D), backward 2BTG H(H+D) for the weight gradient and 2BTG H^2
for dL/dh; G = 4 gates for the LSTM, 1 for the RNN) over its time, against a
512x512x512 np.dot in the same dtype, measured in the same run.

Threads: both libraries get the same number, ``--threads`` (default 1). The
BLAS under numpy reads OMP_NUM_THREADS / OPENBLAS_NUM_THREADS /
MKL_NUM_THREADS only when it is loaded, so this script sets them before it
imports numpy (and prints the count the BLAS reports, for numpy's bundled
OpenBLAS); torch gets ``torch.set_num_threads`` (and one inter-op thread).
Single-threaded is the default because it is the fair, reproducible
comparison on a shared machine; the load average is printed with the table.

Memory: by default glibc hands large arrays fresh pages and takes them back
when they are freed, so every step of either library pays page faults. The
commands that train call ``process.reuse_freed_memory()``, which keeps freed
memory in the process, and so does this script (``--no-reuse-memory``: glibc's
default); it is process-wide, so torch gets it too.
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="threads for numpy's BLAS and for torch")
    parser.add_argument("--quick", action="store_true", help="a fast smoke run: two small cells")
    parser.add_argument("--cells", choices=("all", "short", "long"), default="all",
                        help="the 32-cell grid (short), the B64 T1000 cells (long), or both")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per cell (default 7, quick 3)")
    parser.add_argument("--models", default="rnn,lstm,gru")
    parser.add_argument("--dtypes", default="float32,float64")
    parser.add_argument("--no-torch", action="store_true", help="time numpy only")
    parser.add_argument("--reuse-memory", action=argparse.BooleanOptionalAction, default=True,
                        help="call process.reuse_freed_memory() first, as the commands that train do")
    return parser.parse_args()


ARGS = parse_args()
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = str(ARGS.threads)  # before numpy is imported: read once, at load time

import itertools  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from lstm_cli import losses, models, process  # noqa: E402

try:
    if ARGS.no_torch:
        raise ImportError
    import torch
    torch.set_num_threads(ARGS.threads)
    torch.set_num_interop_threads(1)
except ImportError:
    torch = None

D, K = 8, 4
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
PEAK_N = 512  # the GEMM that measures numpy's peak: (PEAK_N x PEAK_N) @ (PEAK_N x PEAK_N)


def blas_threads() -> str:
    """The thread count numpy's BLAS reports, when it is the scipy-openblas numpy wheels ship."""
    import ctypes
    import glob

    for path in glob.glob(os.path.join(os.path.dirname(np.__file__) + ".libs", "*openblas*")):
        lib = ctypes.CDLL(path)
        for name in ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_",
                     "openblas_get_num_threads"):
            if hasattr(lib, name):
                return str(getattr(lib, name)())
    return "unknown (set through the environment)"


def numpy_step(kind, dtype, B, H, T, rng):
    spec = models.ModelSpec(kind=kind, hidden=H, dtype=dtype)
    params = models.init_params(spec, D, K, rng)
    x = rng.standard_normal((B, T, D)).astype(dtype)
    y = rng.integers(0, K, size=(B, 1))

    def step():
        out, cache = models.forward(params, x, spec=spec)
        _, dout = losses.loss_and_grad("cross_entropy", out, y)
        return models.backward(params, cache, dout)

    return params, x, y, step


def torch_step(kind, dtype, params, x, y):
    tdtype = {"float32": torch.float32, "float64": torch.float64}[dtype]
    H = params["weight_hh"].shape[1]
    core = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[kind](D, H, batch_first=True,
                                                                                  dtype=tdtype)
    head = torch.nn.Linear(H, K, dtype=tdtype)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(core, f"{name}_l0").copy_(torch.from_numpy(params[name]))
        head.weight.copy_(torch.from_numpy(params["head.weight"]))
        head.bias.copy_(torch.from_numpy(params["head.bias"]))
    x_t, y_t = torch.from_numpy(x), torch.from_numpy(y[:, 0])
    parameters = list(core.parameters()) + list(head.parameters())

    def step():
        for p in parameters:
            p.grad = None
        h, _ = core(x_t)
        loss = torch.nn.functional.cross_entropy(head(h[:, -1]), y_t)
        loss.backward()

    return step


def median_ms(steps, repeats):
    """Median wall time (ms) of each step function, runs interleaved; two warm-up runs each."""
    for step in steps:
        step()
        step()
    times = [[] for _ in steps]
    for _ in range(repeats):
        for i, step in enumerate(steps):
            start = time.perf_counter()
            step()
            times[i].append(time.perf_counter() - start)
    return [1e3 * statistics.median(t) for t in times]


def gemm_peak_gflops(dtype: str, repeats: int) -> float:
    """numpy's GEMM rate (GFLOP/s) on one large square matmul: the ceiling for a step's matmuls."""
    a = np.random.default_rng(0).standard_normal((PEAK_N, PEAK_N)).astype(dtype)
    out = np.empty_like(a)
    ms = median_ms([lambda: np.dot(a, a, out=out)], max(repeats, 5))[0]
    return 2 * PEAK_N ** 3 / (ms * 1e-3) / 1e9


def step_gflop(kind: str, B: int, H: int, T: int) -> float:
    """Matmul FLOPs of one forward + backward (the head's are negligible), in GFLOP."""
    return 2 * B * T * GATES[kind] * H * (2 * (H + D) + H) / 1e9


def main() -> None:
    models_, dtypes = ARGS.models.split(","), ARGS.dtypes.split(",")
    if ARGS.quick:
        grid = [(kind, dtype, 32, 32, 50) for kind in models_ for dtype in ("float32", "float64")]
    else:
        grid = []
        if ARGS.cells in ("all", "short"):
            grid += list(itertools.product(models_, dtypes, (32, 128), (32, 128), (50, 200)))
        if ARGS.cells in ("all", "long"):
            grid += [(kind, dtype, 64, H, 1000) for kind in models_ for dtype in dtypes for H in (32, 128)]
    repeats = ARGS.repeats or (3 if ARGS.quick else 7)
    malloc = "glibc default"
    if ARGS.reuse_memory:
        malloc = "freed memory reused" if process.reuse_freed_memory() else "default (no glibc mallopt)"
    print(f"numpy {np.__version__}, torch {torch.__version__ if torch else 'not installed'}, "
          f"repeats {repeats} (median), D={D}, K={K}")
    print(f"threads: numpy BLAS {blas_threads()}, torch {torch.get_num_threads() if torch else '-'} "
          f"(--threads {ARGS.threads}); malloc: {malloc}")
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    peak = {dtype: gemm_peak_gflops(dtype, repeats) for dtype in sorted({cell[1] for cell in grid})}
    print("numpy GEMM peak (np.dot {0}x{0}x{0}): {1}".format(
        PEAK_N, ", ".join(f"{dtype} {gflops:.1f} GFLOP/s" for dtype, gflops in peak.items())))
    header = (f"{'model':5} {'dtype':7} {'B':>4} {'H':>4} {'T':>4} {'numpy ms':>9} {'torch ms':>9} {'ratio':>6}"
              f" {'peak':>5}")
    print(header)
    print("-" * len(header))
    ratios: dict[tuple[str, str], list[float]] = {}
    rng = np.random.default_rng(0)
    for kind, dtype, B, H, T in grid:
        params, x, y, np_step = numpy_step(kind, dtype, B, H, T, rng)
        steps = [np_step] + ([torch_step(kind, dtype, params, x, y)] if torch else [])
        ms = median_ms(steps, repeats)
        line = f"{kind:5} {dtype:7} {B:4d} {H:4d} {T:4d} {ms[0]:9.2f}"
        if torch:
            ratio = ms[0] / ms[1]
            ratios.setdefault((kind, dtype), []).append(ratio)
            line += f" {ms[1]:9.2f} {ratio:6.2f}"
        else:
            line += f" {'-':>9} {'-':>6}"
        if H == 128:
            line += f" {step_gflop(kind, B, H, T) / (ms[0] * 1e-3) / peak[dtype]:5.0%}"
        print(line, flush=True)
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    if ratios:
        print("geometric mean of numpy/torch per (model, dtype):")
        for (kind, dtype), values in ratios.items():
            gmean = math.exp(sum(map(math.log, values)) / len(values))
            print(f"  {kind:5} {dtype:7} {gmean:5.2f}  over {len(values)} cells")


if __name__ == "__main__":
    main()
