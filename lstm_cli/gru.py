"""Gated recurrent unit (Cho et al. 2014) over a whole sequence, forward and backprop-through-time.

PyTorch's ``torch.nn.GRU`` equations, gate order r, z, n:

    r_t = sigmoid(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)        reset gate
    z_t = sigmoid(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)        update gate: how much of h_{t-1} to keep
    n_t = tanh(W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn))   candidate state
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}

The reset gate multiplies W_hn h_{t-1} + b_hn, b_hn inside the product
(PyTorch's and cuDNN's form; Cho et al. write W (r_t * h_{t-1})), so a
parameter dict loads into ``torch.nn.GRU`` and computes the same numbers.
The GRU has no separate cell state: h itself is the belt. One step back
multiplies dL/dh by z_t directly (the path h_t = ... + z_t * h_{t-1}), plus
every path through the gates and n_t.

The backward pass (a: a pre-activation; hn_t = W_hn h_{t-1} + b_hn):

    da_n  = dh_t * (1 - z_t) * (1 - n_t^2)
    da_z  = dh_t * (h_{t-1} - n_t) * z_t (1 - z_t)
    da_r  = da_n * hn_t * r_t (1 - r_t)
    dh_{t-1} = dh_t * z_t + W_hh^T [da_r, da_z, da_n * r_t]      (the direct path, then the gates)

Shapes: T time steps, B batch, D input features, H hidden units. Arrays are
time-major: x (T, B, D) in, h (T, B, H) out. Parameters use PyTorch's names
and shapes: weight_ih (3H, D), weight_hh (3H, H), bias_ih (3H,), bias_hh (3H,).

Float32 only: the backward flushes subnormal gradient entries to zero once the
carried gradient has vanished (``subnormal.py``); float64 keeps every bit.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from lstm_cli.subnormal import SubnormalFlush

GATES = ("r", "z", "n")  # the order of the 3H rows of every parameter


class GRUCache(NamedTuple):
    x: np.ndarray  # (T, B, D) inputs, time-major
    h: np.ndarray  # (T+1, B, H) hidden states; h[0] is the initial state
    gates: np.ndarray  # (T, B, 3H) r_t, z_t, n_t after their activations
    hn: np.ndarray  # (T, B, H) W_hn h_{t-1} + b_hn, the term the reset gate multiplies

    @property
    def states(self) -> np.ndarray:
        """(T+1, B, H) hidden states h_0 (initial) .. h_T (the same interface as the other cells)."""
        return self.h

    def gate(self, name: str) -> np.ndarray:
        """(T, B, H) activated gate "r", "z" or "n" at every step, a view."""
        k = GATES.index(name)
        H = self.hn.shape[-1]
        return self.gates[:, :, k * H:(k + 1) * H]


class GRUGrads(NamedTuple):
    params: dict[str, np.ndarray]  # same keys as the recurrent parameters
    dh: np.ndarray  # (T, B, H) total dL/dh_t (through every later step)
    dpre: np.ndarray  # (T, B, 3H) dL/d(W_hh h_{t-1} + b_hh): step t's share of dL/dW_hh is dpre_t^T h_{t-1}


def _sigmoid(a: np.ndarray) -> np.ndarray:
    """sigmoid(a) = 0.5 + 0.5 tanh(a / 2), in place; no overflow for large |a|."""
    a *= 0.5
    np.tanh(a, out=a)
    a *= 0.5
    a += 0.5
    return a


def forward(params: dict[str, np.ndarray], x: np.ndarray,
            h0: np.ndarray | None = None) -> tuple[np.ndarray, GRUCache]:
    """Run the GRU over x (T, B, D); return h (T, B, H) (a view) and the cache.

    h0 (B, H): the initial state (zeros if None).
    """
    w_hh = params["weight_hh"]
    dtype = w_hh.dtype
    T, B, D = x.shape
    H = w_hh.shape[1]
    # the input side of every gate at every step in one matmul: W_i x_t + b_i
    gi = x.reshape(T * B, D).astype(dtype, copy=False) @ params["weight_ih"].T  # (T*B, 3H)
    gi = gi.reshape(T, B, 3 * H)
    gi += params["bias_ih"]
    h = np.empty((T + 1, B, H), dtype=dtype)  # (T+1, B, H)
    h[0] = 0.0 if h0 is None else h0
    gates = np.empty((T, B, 3 * H), dtype=dtype)  # (T, B, 3H) r, z, n
    hn = np.empty((T, B, H), dtype=dtype)  # (T, B, H)
    w_hh_t = np.ascontiguousarray(w_hh.T)  # (H, 3H)
    gh = np.empty((B, 3 * H), dtype=dtype)
    for t in range(T):
        np.dot(h[t], w_hh_t, out=gh)
        gh += params["bias_hh"]  # W_h h_{t-1} + b_h   (B, 3H)
        rz = gates[t, :, :2 * H]
        np.add(gi[t, :, :2 * H], gh[:, :2 * H], out=rz)
        _sigmoid(rz)  # r_t, z_t
        hn[t] = gh[:, 2 * H:]
        n = gates[t, :, 2 * H:]
        np.multiply(rz[:, :H], hn[t], out=n)  # r_t * (W_hn h_{t-1} + b_hn)
        n += gi[t, :, 2 * H:]
        np.tanh(n, out=n)  # n_t
        # h_t = (1 - z) n + z h_{t-1} = n + z (h_{t-1} - n)
        np.subtract(h[t], n, out=h[t + 1])
        h[t + 1] *= rz[:, H:]
        h[t + 1] += n
    return h[1:], GRUCache(x=x, h=h, gates=gates, hn=hn)


def backward(params: dict[str, np.ndarray], cache: GRUCache, dh_out: np.ndarray) -> GRUGrads:
    """Backprop-through-time (the equations of the module docstring).

    dh_out (T, B, H) is the gradient arriving at each h_t from outside the
    recurrence (the head); it is not modified.
    """
    x, h, gates, hn = cache
    T, B, H = hn.shape
    w_hh = params["weight_hh"]
    dtype = w_hh.dtype
    r, z, n = (gates[:, :, k * H:(k + 1) * H] for k in range(3))  # (T, B, H) views
    h_prev = h[:-1]
    # The local derivatives of every step at once, from the forward pass; the loop
    # multiplies them by dh_t:  da_n = dh [(1 - z)(1 - n^2)],  da_z = dh [(h_{t-1} - n) z (1 - z)]
    d_n = (1.0 - z) * (1.0 - n * n)  # (T, B, H)
    d_z = (h_prev - n) * z * (1.0 - z)  # (T, B, H)
    d_r = hn * r * (1.0 - r)  # (T, B, H) da_r = da_n [hn r (1 - r)]
    dh_in = np.asarray(dh_out, dtype=dtype)
    has_out = dh_in.reshape(T, -1).any(axis=1)  # steps where the head sends a gradient
    dh = np.empty((T, B, H), dtype=dtype)  # becomes the total dL/dh_t
    dgi = np.empty((T, B, 3 * H), dtype=dtype)  # dL/d(W_i x_t + b_i): da_r, da_z, da_n
    dgh = np.empty((T, B, 3 * H), dtype=dtype)  # dL/d(W_h h_{t-1} + b_h): da_r, da_z, da_n * r
    flush = SubnormalFlush(dtype)  # float32 only: a vanished gradient's subnormals become zero
    for t in range(T - 1, -1, -1):
        if t == T - 1:
            dh[t] = dh_in[t]
        else:
            np.dot(dgh[t + 1], w_hh, out=dh[t])  # through the gates and n_{t+1}
            dh[t] += dh[t + 1] * z[t + 1]  # the direct path: h_{t+1} = ... + z_{t+1} h_t
            if has_out[t]:
                dh[t] += dh_in[t]
        da = dgi[t]
        np.multiply(dh[t], d_n[t], out=da[:, 2 * H:])  # da_n: through h_t's (1 - z) n_t and tanh
        np.multiply(dh[t], d_z[t], out=da[:, H:2 * H])  # da_z: through h_t's z (h_{t-1} - n_t) and sigmoid
        np.multiply(da[:, 2 * H:], d_r[t], out=da[:, :H])  # da_r: through r_t * hn_t and sigmoid
        dgh[t, :, :2 * H] = da[:, :2 * H]
        np.multiply(da[:, 2 * H:], r[t], out=dgh[t, :, 2 * H:])  # hn_t enters n_t times r_t
        flush(t, dh[t], dgh[t])  # both carried to step t-1 (float32 only)
    dgi_flat, dgh_flat = dgi.reshape(T * B, 3 * H), dgh.reshape(T * B, 3 * H)
    grads = {
        "weight_ih": dgi_flat.T @ x.reshape(T * B, -1).astype(dtype, copy=False),  # sum_t dgi_t^T x_t
        "weight_hh": dgh_flat.T @ h_prev.reshape(T * B, H),  # sum_t dgh_t^T h_{t-1}
        "bias_ih": dgi_flat.sum(axis=0),
        "bias_hh": dgh_flat.sum(axis=0),
    }
    return GRUGrads(params=grads, dh=dh, dpre=dgh)
