"""Vanilla (Elman) RNN over a whole sequence, forward and backprop-through-time.

    h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh),   act = tanh or relu

Shapes: B batch, T time steps, D input features, H hidden units.
Inside this module arrays are *time-major* (T, B, ...) so that every step is
one contiguous block; ``models`` turns them into the batch-major public API.

Parameters use PyTorch's names and shapes (``torch.nn.RNN``):
weight_ih (H, D), weight_hh (H, H), bias_ih (H,), bias_hh (H,).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

ACTIVATIONS = ("tanh", "relu")


class RNNCache(NamedTuple):
    x: np.ndarray  # (T, B, D) inputs, time-major
    h: np.ndarray  # (T+1, B, H) hidden states; h[0] is the initial state
    activation: str


class RNNGrads(NamedTuple):
    params: dict[str, np.ndarray]  # same keys as the recurrent parameters
    dh: np.ndarray  # (T, B, H) total dL/dh_t (through every later step)
    dpre: np.ndarray  # (T, B, H) dL/d(pre-activation of step t)


def forward(params: dict[str, np.ndarray], x: np.ndarray, h0: np.ndarray | None = None,
            activation: str = "tanh") -> tuple[np.ndarray, RNNCache]:
    """Run the RNN over x (T, B, D); return h (T, B, H) and the cache."""
    w_ih, w_hh = params["weight_ih"], params["weight_hh"]
    T, B, _ = x.shape
    H = w_hh.shape[0]
    # the input projection of every step in one matmul, both biases folded in
    pre = x @ w_ih.T  # (T, B, H)
    pre += params["bias_ih"] + params["bias_hh"]
    h = np.empty((T + 1, B, H), dtype=w_hh.dtype)  # (T+1, B, H)
    h[0] = 0.0 if h0 is None else h0
    w_hh_t = np.ascontiguousarray(w_hh.T)
    step = np.empty((B, H), dtype=w_hh.dtype)
    for t in range(T):
        np.matmul(h[t], w_hh_t, out=step)
        step += pre[t]
        if activation == "tanh":
            np.tanh(step, out=h[t + 1])
        else:
            np.maximum(step, 0.0, out=h[t + 1])
    return h[1:], RNNCache(x=x, h=h, activation=activation)


def backward(params: dict[str, np.ndarray], cache: RNNCache, dh_out: np.ndarray) -> RNNGrads:
    """Backprop-through-time.

    dh_out (T, B, H) is the gradient arriving at each h_t from outside the
    recurrence (the head); it is not modified.
    """
    x, h = cache.x, cache.h
    T = x.shape[0]
    w_hh = params["weight_hh"]
    dh = dh_out.copy()  # (T, B, H), becomes the total dL/dh_t
    dpre = np.empty_like(dh)  # (T, B, H)
    for t in range(T - 1, -1, -1):
        if cache.activation == "tanh":
            np.multiply(dh[t], 1.0 - h[t + 1] ** 2, out=dpre[t])  # backprop through tanh
        else:
            np.multiply(dh[t], h[t + 1] > 0, out=dpre[t])  # backprop through relu
        if t > 0:
            dh[t - 1] += dpre[t] @ w_hh  # carried back through W_hh to h_{t-1}
    H, D = w_hh.shape[0], x.shape[2]
    dpre_flat = dpre.reshape(-1, H)
    db = dpre_flat.sum(axis=0)
    grads = {
        "weight_ih": dpre_flat.T @ x.reshape(-1, D),
        "weight_hh": dpre_flat.T @ h[:-1].reshape(-1, H),
        "bias_ih": db,
        "bias_hh": db.copy(),
    }
    return RNNGrads(params=grads, dh=dh, dpre=dpre)
