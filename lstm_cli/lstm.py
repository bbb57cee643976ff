"""LSTM with a forget gate over a whole sequence, forward and backprop-through-time.

The equations of "Understanding LSTM Networks" (forget gate: Gers et al. 2000):

    f_t = sigmoid(W_f [h_{t-1}, x_t] + b_f)      forget gate: what to drop from the cell
    i_t = sigmoid(W_i [h_{t-1}, x_t] + b_i)      input gate: which cells to update
    g_t = tanh(W_g [h_{t-1}, x_t] + b_g)         candidate values (C~_t)
    c_t = f_t * c_{t-1} + i_t * g_t              the cell state: the "conveyor belt"
    o_t = sigmoid(W_o [h_{t-1}, x_t] + b_o)      output gate
    h_t = o_t * tanh(c_t)

Shapes: B batch, T time steps, D input features, H hidden units. Arrays are
time-major (T, B, ...) inside this module. Parameters use PyTorch's names and
shapes (``torch.nn.LSTM``, gate order i, f, g, o along the 4H axis):
weight_ih (4H, D), weight_hh (4H, H), bias_ih (4H,), bias_hh (4H,).

sigmoid(z) = 0.5 + 0.5 tanh(z / 2): the sigmoid rows of the weights are halved
(exact in floating point) so that one tanh over the fused (B, 4H) block gives
all four gates.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class LSTMCache(NamedTuple):
    x: np.ndarray  # (T, B, D) inputs, time-major
    gates: np.ndarray  # (T, B, 4H) activated gates i, f, g, o
    c: np.ndarray  # (T+1, B, H) cell states; c[0] is the initial cell
    h: np.ndarray  # (T+1, B, H) hidden states; h[0] is the initial state
    tanh_c: np.ndarray  # (T, B, H) tanh(c_t)


class LSTMGrads(NamedTuple):
    params: dict[str, np.ndarray]  # same keys as the recurrent parameters
    dh: np.ndarray  # (T, B, H) total dL/dh_t
    dc: np.ndarray  # (T, B, H) total dL/dc_t
    dpre: np.ndarray  # (T, B, 4H) dL/d(gate pre-activations of step t)


def _gate_scale(H: int, dtype) -> tuple[np.ndarray, np.ndarray]:
    """Per-column (scale, shift) turning tanh(a) into [sigmoid, sigmoid, tanh, sigmoid]."""
    scale = np.full(4 * H, 0.5, dtype=dtype)
    scale[2 * H:3 * H] = 1.0
    shift = np.full(4 * H, 0.5, dtype=dtype)
    shift[2 * H:3 * H] = 0.0
    return scale, shift


def forward(params: dict[str, np.ndarray], x: np.ndarray, h0: np.ndarray | None = None,
            c0: np.ndarray | None = None) -> tuple[np.ndarray, LSTMCache]:
    """Run the LSTM over x (T, B, D); return h (T, B, H) and the cache."""
    w_hh = params["weight_hh"]
    T, B, _ = x.shape
    H = w_hh.shape[1]
    dtype = w_hh.dtype
    scale, shift = _gate_scale(H, dtype)
    # halve the sigmoid rows so one tanh serves every gate (scale is 1 or 1/2: exact)
    w_ih_t = (params["weight_ih"] * scale[:, None]).T  # (D, 4H)
    w_hh_t = np.ascontiguousarray((w_hh * scale[:, None]).T)  # (H, 4H)
    bias = (params["bias_ih"] + params["bias_hh"]) * scale  # (4H,)
    gates = x @ w_ih_t  # (T, B, 4H) the input projection of every step at once
    gates += bias
    c = np.empty((T + 1, B, H), dtype=dtype)
    h = np.empty((T + 1, B, H), dtype=dtype)
    tanh_c = np.empty((T, B, H), dtype=dtype)
    c[0] = 0.0 if c0 is None else c0
    h[0] = 0.0 if h0 is None else h0
    rec = np.empty((B, 4 * H), dtype=dtype)
    ig = np.empty((B, H), dtype=dtype)
    for t in range(T):
        a = gates[t]  # (B, 4H) pre-activations, then gates in place
        np.matmul(h[t], w_hh_t, out=rec)
        a += rec
        np.tanh(a, out=a)
        a *= scale
        a += shift
        i, f, g, o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
        np.multiply(f, c[t], out=c[t + 1])  # forget part of the old cell
        np.multiply(i, g, out=ig)
        c[t + 1] += ig  # add the gated candidate
        np.tanh(c[t + 1], out=tanh_c[t])
        np.multiply(o, tanh_c[t], out=h[t + 1])
    return h[1:], LSTMCache(x=x, gates=gates, c=c, h=h, tanh_c=tanh_c)


def backward(params: dict[str, np.ndarray], cache: LSTMCache, dh_out: np.ndarray,
             dc_out: np.ndarray | None = None) -> LSTMGrads:
    """Backprop-through-time.

    dh_out (T, B, H) is the gradient arriving at each h_t from outside the
    recurrence (the head); dc_out likewise for c_t (rarely used). Neither is
    modified.
    """
    x, gates, c, h, tanh_c = cache
    T, B, H = tanh_c.shape
    w_hh = params["weight_hh"]
    dh = dh_out.copy()  # (T, B, H), becomes the total dL/dh_t
    dc = np.zeros_like(dh) if dc_out is None else dc_out.copy()  # total dL/dc_t
    dpre = np.empty_like(gates)  # (T, B, 4H)
    tmp = np.empty((B, H), dtype=dh.dtype)
    for t in range(T - 1, -1, -1):
        a = gates[t]
        i, f, g, o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
        d = dpre[t]
        di, df, dg, do = d[:, :H], d[:, H:2 * H], d[:, 2 * H:3 * H], d[:, 3 * H:]
        tc = tanh_c[t]
        np.multiply(dh[t], tc, out=do)  # h = o * tanh(c)
        # dc_t += dh_t * o * (1 - tanh(c)^2): backprop through tanh(c)
        np.multiply(tc, tc, out=tmp)
        np.subtract(1.0, tmp, out=tmp)
        tmp *= o
        tmp *= dh[t]
        dc[t] += tmp
        np.multiply(dc[t], g, out=di)  # c = f * c_prev + i * g
        np.multiply(dc[t], c[t], out=df)
        np.multiply(dc[t], i, out=dg)
        # through the nonlinearities: sigmoid' = s(1-s), tanh' = 1 - g^2
        d[:, :2 * H] *= a[:, :2 * H] * (1.0 - a[:, :2 * H])
        dg *= 1.0 - g * g
        do *= o * (1.0 - o)
        if t > 0:
            np.multiply(dc[t], f, out=tmp)
            dc[t - 1] += tmp  # the conveyor belt: dc_{t-1} = dc_t * f_t
            dh[t - 1] += d @ w_hh  # through W_hh to h_{t-1}
    D = x.shape[2]
    dpre_flat = dpre.reshape(-1, 4 * H)
    db = dpre_flat.sum(axis=0)
    grads = {
        "weight_ih": dpre_flat.T @ x.reshape(-1, D),
        "weight_hh": dpre_flat.T @ h[:-1].reshape(-1, H),
        "bias_ih": db,
        "bias_hh": db.copy(),
    }
    return LSTMGrads(params=grads, dh=dh, dc=dc, dpre=dpre)
