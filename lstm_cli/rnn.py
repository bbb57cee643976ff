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

from lstm_cli.errors import BadInput
from lstm_cli.subnormal import SubnormalFlush

ACTIVATIONS = ("tanh", "relu")


class RNNCache(NamedTuple):
    x: np.ndarray  # (T, B, D) inputs, time-major
    h: np.ndarray  # (T+1, B, H) hidden states; h[0] is the initial state
    activation: str

    @property
    def states(self) -> np.ndarray:
        """(T+1, B, H) hidden states h_0 (initial) .. h_T (the same interface as the LSTM's cache)."""
        return self.h


class RNNGrads(NamedTuple):
    params: dict[str, np.ndarray]  # same keys as the recurrent parameters
    dh: np.ndarray  # (T, B, H) total dL/dh_t (through every later step)
    dpre: np.ndarray  # (T, B, H) dL/d(pre-activation of step t)


def forward(params: dict[str, np.ndarray], x: np.ndarray, h0: np.ndarray | None = None,
            activation: str = "tanh") -> tuple[np.ndarray, RNNCache]:
    """Run the RNN over x (T, B, D); return h (T, B, H) and the cache.

    h0 (B, H): the initial state (zeros if None).
    """
    if activation not in ACTIVATIONS:
        raise BadInput(f"unknown activation {activation!r}")
    w_hh = params["weight_hh"]
    dtype = w_hh.dtype
    T, B, D = x.shape
    H = w_hh.shape[0]
    # the input projection of every step in one matmul, both biases folded in
    pre = x.reshape(T * B, D).astype(dtype, copy=False) @ params["weight_ih"].T  # (T*B, H)
    pre = pre.reshape(T, B, H)
    pre += params["bias_ih"] + params["bias_hh"]
    h = np.empty((T + 1, B, H), dtype=dtype)  # (T+1, B, H)
    h[0] = 0.0 if h0 is None else h0
    w_hh_t = np.ascontiguousarray(w_hh.T)  # (H, H)
    step = np.empty((B, H), dtype=dtype)
    for t in range(T):
        np.dot(h[t], w_hh_t, out=step)
        step += pre[t]  # x_t W_ih^T + b + h_{t-1} W_hh^T
        if activation == "tanh":
            np.tanh(step, out=h[t + 1])
        else:
            np.maximum(step, 0.0, out=h[t + 1])
    return h[1:], RNNCache(x=x, h=h, activation=activation)


def backward(params: dict[str, np.ndarray], cache: RNNCache, dh_out: np.ndarray) -> RNNGrads:
    """Backprop-through-time:

        dpre_t = dh_t * act'(pre_t)            act' = 1 - h_t^2 (tanh), [h_t > 0] (relu)
        dh_{t-1} += dpre_t W_hh                (through the recurrence)

    dh_out (T, B, H) is the gradient arriving at each h_t from outside the
    recurrence (the head); it is not modified.
    """
    x, h = cache.x, cache.h
    T, B, H = dh_out.shape
    w_hh = params["weight_hh"]
    dtype = w_hh.dtype
    # act'(pre_t) for every step at once, from the outputs; multiplied by dh_t in the loop
    dpre = np.empty((T, B, H), dtype=dtype)  # (T, B, H)
    if cache.activation == "tanh":
        np.multiply(h[1:], h[1:], out=dpre)
        np.subtract(1.0, dpre, out=dpre)  # tanh' = 1 - h^2
    else:
        np.greater(h[1:], 0.0, out=dpre)  # relu' = [h > 0] (h = 0 exactly where pre <= 0)
    dh_in = np.asarray(dh_out, dtype=dtype)
    has_out = dh_in.reshape(T, -1).any(axis=1)  # steps where the head sends a gradient
    dh = np.empty((T, B, H), dtype=dtype)  # becomes the total dL/dh_t
    flush = SubnormalFlush(dtype)  # float32 only: a vanished gradient's subnormals become zero
    for t in range(T - 1, -1, -1):
        if t == T - 1:
            dh[t] = dh_in[t]
        else:
            np.dot(dpre[t + 1], w_hh, out=dh[t])  # carried back through W_hh from step t+1
            if has_out[t]:
                dh[t] += dh_in[t]
        np.multiply(dpre[t], dh[t], out=dpre[t])  # backprop through the activation
        flush(t, dpre[t])  # carried to step t-1
    dpre_flat = dpre.reshape(T * B, H)
    db = dpre_flat.sum(axis=0)
    grads = {
        "weight_ih": dpre_flat.T @ x.reshape(T * B, -1).astype(dtype, copy=False),  # sum_t dpre_t^T x_t
        "weight_hh": dpre_flat.T @ h[:-1].reshape(T * B, H),  # sum_t dpre_t^T h_{t-1}
        "bias_ih": db,
        "bias_hh": db.copy(),
    }
    return RNNGrads(params=grads, dh=dh, dpre=dpre)
