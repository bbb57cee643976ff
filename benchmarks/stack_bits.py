"""Which numpy operations give the same bits stacked over S runs as run by run (issue 26).

Seed-stacked training (lstm_cli/stacked.py) keeps a run's record bit-identical to the run
alone only where each operation, applied to a stack (S, ...), gives every slice exactly the
bits it gives that slice alone. This script checks that, on this machine's numpy and BLAS,
for the shapes and memory layouts the cells use; rerun it on another CPU family.

    python benchmarks/stack_bits.py            # a table: operation, dtype, identical?
"""

from __future__ import annotations

import argparse

import numpy as np


def same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.tobytes() == b.tobytes()


def checks(S: int, B: int, H: int, D: int, T: int, dtype, rng) -> dict[str, bool]:
    def r(*shape):
        return rng.standard_normal(shape).astype(dtype)

    out: dict[str, bool] = {}
    # recurrent step, batch-major (RNN, GRU): h (B,H) @ W^T (H,G*H), W^T contiguous
    h, w = r(S, B, H), r(S, H, 4 * H)
    stacked = np.matmul(h, w)
    alone = np.empty((B, 4 * H), dtype)
    out["matmul (S,B,H)@(S,H,4H) vs np.dot(out=)"] = all(
        same(stacked[s], np.dot(h[s], w[s], out=alone).copy()) for s in range(S))
    # the same with the stack axis strided (a step t of a (S, T, B, H) array)
    hs = r(S, T, B, H)[:, 1]
    stacked = np.matmul(hs, w)
    out["matmul, stack axis strided"] = all(same(stacked[s], np.dot(hs[s], w[s])) for s in range(S))
    # into a strided out= (a step of a (S, T, B, G*H) record)
    rec = np.empty((S, T, B, 4 * H), dtype)
    np.matmul(hs, w, out=rec[:, 2])
    out["matmul into strided out="] = all(same(rec[s, 2], np.dot(hs[s], w[s])) for s in range(S))
    # feature-major (LSTM): W (4H, H+D+1) @ inputs (H+D+1, B)
    wg, inp = r(S, 4 * H, H + D + 1), r(S, T, H + D + 1, B)[:, 3]
    stacked = np.matmul(wg, inp)
    out["matmul (S,4H,H+D+1)@(S,H+D+1,B) (LSTM step)"] = all(
        same(stacked[s], np.dot(wg[s], inp[s])) for s in range(S))
    # backward through the recurrence with W not transposed: (B,G*H) @ (G*H,H)
    dz, whh = r(S, B, 4 * H), r(S, 4 * H, H)
    out["matmul (S,B,4H)@(S,4H,H) (backward step)"] = all(
        same(np.matmul(dz, whh)[s], np.dot(dz[s], whh[s])) for s in range(S))
    # transposed operand views, as alone code passes them (x @ W.T)
    x, wih = r(S, T * B, D), r(S, H, D)
    out["matmul with transposed views (x @ W^T)"] = all(
        same(np.matmul(x, wih.transpose(0, 2, 1))[s], x[s] @ wih[s].T) for s in range(S))
    # weight gradient dpre^T @ x over every step
    dp = r(S, T * B, H)
    out["matmul dpre^T @ x (weight gradient)"] = all(
        same(np.matmul(dp.transpose(0, 2, 1), x)[s], dp[s].T @ x[s]) for s in range(S))
    # batch of one: numpy/BLAS may take gemv instead of gemm
    h1 = r(S, 1, H)
    out["matmul (S,1,H)@(S,H,4H) (a batch of one)"] = all(
        same(np.matmul(h1, w)[s], np.dot(h1[s], w[s])) for s in range(S))
    # reductions the backward uses
    out["sum over batch: (S,N,H).sum(1) vs (N,H).sum(0)"] = all(
        same(dp.sum(axis=1)[s], dp[s].sum(axis=0)) for s in range(S))
    flat = r(S, 4 * H * (H + D + 1))
    out["sum of squares: stacked rows vs whole array"] = all(
        same(np.square(flat, dtype=np.float64).sum(axis=1)[s], np.sum(np.square(flat[s], dtype=np.float64)))
        for s in range(S))
    # element-wise: position in a longer (or strided) array must not change a value
    a = r(S, B, 4 * H) * 4
    for name, f in (("tanh", np.tanh), ("exp", np.exp), ("log", lambda v: np.log(np.abs(v)))):
        out[f"{name}, contiguous stack"] = all(same(f(a)[s], f(a[s].copy())) for s in range(S))
        strided = r(S, T, B, 4 * H)[:, 1] * 4
        out[f"{name}, stack axis strided"] = all(same(f(strided)[s], f(strided[s].copy())) for s in range(S))
        out[f"{name}, gate slice (strided rows)"] = all(
            same(f(a[:, :, H:3 * H])[s], f(a[s, :, H:3 * H])) for s in range(S))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", type=int, default=5, help="runs stacked (S)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"numpy {np.__version__}")
    results: dict[str, list[bool]] = {}
    sizes = [(B, H, D, T) for B in (1, 2, 7, 32, 64, 128) for H in (5, 16, 32, 64, 128) for D, T in ((3, 4), (6, 11))]
    for dtype in (np.float64, np.float32):
        for B, H, D, T in sizes:
            for name, ok in checks(args.stack, B, H, D, T, dtype, rng).items():
                results.setdefault(f"{name} [{np.dtype(dtype).name}]", []).append(ok)
    width = max(map(len, results))
    for name, oks in results.items():
        print(f"{name:{width}}  identical in {sum(oks):3d} of {len(oks)} sizes")


if __name__ == "__main__":
    main()
