"""The LSTM's plain reference: the equations of ``cells/lstm.py`` one gate at a time.

Batch-major, nothing fused, no buffer reused: slow and obviously right. The
fused kernel of ``cells/lstm.py`` is checked against these (tests/test_cells.py,
tests/test_lstm.py, tests/test_bits.py). Shapes: x (B, T, D), h and c (B, T, H);
parameters in PyTorch's names and gate order (i, f, g, o). dh_out, dc_out
(B, T, H): gradients arriving at each h_t, c_t from outside the recurrence.
"""

from __future__ import annotations

import numpy as np


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def reference_forward(params, x, h0=None, c0=None):
    """h, c (B, T, H) of the default LSTM and the per-step gates (i, f, g, o), each a list of (B, H)."""
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


def reference_backward(params, x, states, dh_out, dc_out=None):
    """Parameter gradients and the total dL/dh_t, dL/dc_t (B, T, H) of reference_forward."""
    hs, cs, gates = states
    w_hh = params["weight_hh"]
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


def reference_step(params, variant, x_t, h, c):
    """One step of a variant's equations, gate by gate: h_t, c_t and o_t's pre-activation without
    its peephole."""
    z = x_t @ params["weight_ih"].T + h @ params["weight_hh"].T + params["bias_ih"] + params["bias_hh"]
    rows = dict(zip(variant.gates, np.split(z, len(variant.gates), axis=1)))
    peep = dict(zip(variant.peephole_gates, np.split(params.get("weight_ch", np.zeros(0)),
                                                     max(len(variant.peephole_gates), 1))))
    f = sigmoid(rows["f"] + peep.get("f", 0.0) * c) if variant.forget_gate else 1.0
    i = 1.0 - f if variant.coupled else sigmoid(rows["i"] + peep.get("i", 0.0) * c)
    g = np.tanh(rows["g"])
    c_new = f * c + i * g
    o = sigmoid(rows["o"] + peep.get("o", 0.0) * c_new)
    return o * np.tanh(c_new), c_new, rows["o"]
