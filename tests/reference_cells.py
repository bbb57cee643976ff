"""Plain references for the fast kernels: the equations written the way the article writes them.

One gate at a time, batch-major, nothing fused, no buffers reused: slow and
obviously right. The fast kernels in lstm_cli/rnn.py and lstm_cli/lstm.py are
checked against these (test_lstm.py, test_rnn.py, test_bits.py).

Shapes: x (B, T, D), h and c (B, T, H); parameters in PyTorch's names and
gate order (i, f, g, o). dh_out, dc_out (B, T, H): gradients arriving at each
h_t, c_t from outside the recurrence.
"""

from __future__ import annotations

import numpy as np


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def lstm_forward(params, x, h0=None, c0=None):
    """h, c (B, T, H) and the per-step gates (i, f, g, o), each a list of (B, H)."""
    w_ih, w_hh = params["weight_ih"], params["weight_hh"]
    b = params["bias_ih"] + params["bias_hh"]
    n = w_hh.shape[1]
    batch, steps, _ = x.shape
    h = np.zeros((batch, n)) if h0 is None else h0
    c = np.zeros((batch, n)) if c0 is None else c0
    hs, cs, gates = [h], [c], []
    for t in range(steps):
        z = x[:, t] @ w_ih.T + h @ w_hh.T + b  # (B, 4H), gate order i, f, g, o
        i = sigmoid(z[:, :n])  # input gate: which cells to update
        f = sigmoid(z[:, n:2 * n])  # forget gate: what to drop from the cell
        g = np.tanh(z[:, 2 * n:3 * n])  # candidate values
        o = sigmoid(z[:, 3 * n:])  # output gate
        c = f * c + i * g  # the cell state: the conveyor belt
        h = o * np.tanh(c)
        hs.append(h)
        cs.append(c)
        gates.append((i, f, g, o))
    return np.stack(hs[1:], axis=1), np.stack(cs[1:], axis=1), (hs, cs, gates)


def lstm_backward(params, x, states, dh_out, dc_out=None):
    """Parameter gradients and the total dL/dh_t, dL/dc_t (B, T, H) of lstm_forward."""
    hs, cs, gates = states
    w_ih, w_hh = params["weight_ih"], params["weight_hh"]
    batch, steps, _ = x.shape
    grads = {name: np.zeros_like(params[name]) for name in ("weight_ih", "weight_hh", "bias_ih")}
    dh_total, dc_total = np.zeros_like(dh_out), np.zeros_like(dh_out)
    dh_next = np.zeros_like(hs[0])  # dL/dh_t through step t+1's gates
    dc_next = np.zeros_like(cs[0])  # dL/dc_t through c_{t+1} = f_{t+1} c_t + ...
    for t in range(steps - 1, -1, -1):
        i, f, g, o = gates[t]
        c, c_prev, h_prev = cs[t + 1], cs[t], hs[t]
        dh = dh_out[:, t] + dh_next
        dc = dh * o * (1.0 - np.tanh(c) ** 2) + dc_next  # through h_t = o_t tanh(c_t), and the belt
        if dc_out is not None:
            dc = dc + dc_out[:, t]
        dz_i = dc * g * i * (1.0 - i)
        dz_f = dc * c_prev * f * (1.0 - f)
        dz_g = dc * i * (1.0 - g ** 2)
        dz_o = dh * np.tanh(c) * o * (1.0 - o)
        dz = np.concatenate([dz_i, dz_f, dz_g, dz_o], axis=1)  # (B, 4H)
        grads["weight_ih"] += dz.T @ x[:, t]
        grads["weight_hh"] += dz.T @ h_prev
        grads["bias_ih"] += dz.sum(axis=0)
        dh_total[:, t], dc_total[:, t] = dh, dc
        dh_next = dz @ w_hh  # through the gates of step t
        dc_next = dc * f
    grads["bias_hh"] = grads["bias_ih"].copy()
    return grads, dh_total, dc_total


def rnn_forward(params, x, h0=None, activation="tanh"):
    """h (B, T, H) and the list of states h_0 .. h_T."""
    w_ih, w_hh = params["weight_ih"], params["weight_hh"]
    b = params["bias_ih"] + params["bias_hh"]
    batch, steps, _ = x.shape
    h = np.zeros((batch, w_hh.shape[0])) if h0 is None else h0
    hs = [h]
    for t in range(steps):
        pre = x[:, t] @ w_ih.T + h @ w_hh.T + b  # (B, H)
        h = np.tanh(pre) if activation == "tanh" else np.maximum(pre, 0.0)
        hs.append(h)
    return np.stack(hs[1:], axis=1), hs


def rnn_backward(params, x, hs, dh_out, activation="tanh"):
    """Parameter gradients and the total dL/dh_t (B, T, H) of rnn_forward."""
    w_hh = params["weight_hh"]
    steps = x.shape[1]
    grads = {name: np.zeros_like(params[name]) for name in ("weight_ih", "weight_hh", "bias_ih")}
    dh_total = np.zeros_like(dh_out)
    dh_next = np.zeros_like(hs[0])
    for t in range(steps - 1, -1, -1):
        dh = dh_out[:, t] + dh_next
        h = hs[t + 1]
        dpre = dh * (1.0 - h ** 2) if activation == "tanh" else dh * (h > 0)  # through the activation
        grads["weight_ih"] += dpre.T @ x[:, t]
        grads["weight_hh"] += dpre.T @ hs[t]
        grads["bias_ih"] += dpre.sum(axis=0)
        dh_total[:, t] = dh
        dh_next = dpre @ w_hh  # through the recurrence
    grads["bias_hh"] = grads["bias_ih"].copy()
    return grads, dh_total
