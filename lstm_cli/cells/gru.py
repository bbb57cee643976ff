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

**The exact split of dL/dh_t** (``direct_path``). The backward's recursion is
linear in dh, so the total splits into two parts that each follow it:

    direct_t = z_{t+1} * direct_{t+1} + head_t
    rest_t   = z_{t+1} * rest_{t+1}   + W_hh^T [da_r, da_z, da_n * r]_{t+1}
    dh_t     = direct_t + rest_t       (exactly, to rounding)

``direct`` is what would reach h_t if h_{t-1} fed only the product z_t * h_{t-1}
(detached from r_t, z_t and n_t): the update gate's product along the GRU's
belt, dL/dh_answer * prod z. ``rest`` arrives through n_t and the gates. The
plain reference (``reference_forward``, ``reference_backward``) and ``CELL``
(the GRU as the rest of the tool sees it) are at the end of this module.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from lstm_cli.cells.base import Cell
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


# ---- the plain reference: nn.GRU's documented equations, one gate at a time, batch-major ----

def _plain_sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def reference_forward(params, x, h0=None):
    """h (B, T, H) and the per-step (h_{t-1}, r, z, n, W_hn h_{t-1} + b_hn), batch-major x."""
    w_ir, w_iz, w_in = np.split(params["weight_ih"], 3)
    w_hr, w_hz, w_hn = np.split(params["weight_hh"], 3)
    b_ir, b_iz, b_in = np.split(params["bias_ih"], 3)
    b_hr, b_hz, b_hn = np.split(params["bias_hh"], 3)
    h = np.zeros((x.shape[0], w_hr.shape[1])) if h0 is None else h0
    hs, steps = [], []
    for t in range(x.shape[1]):
        x_t = x[:, t]
        r = _plain_sigmoid(x_t @ w_ir.T + b_ir + h @ w_hr.T + b_hr)  # reset gate
        z = _plain_sigmoid(x_t @ w_iz.T + b_iz + h @ w_hz.T + b_hz)  # update gate
        hn = h @ w_hn.T + b_hn
        n = np.tanh(x_t @ w_in.T + b_in + r * hn)  # candidate state
        steps.append((h, r, z, n, hn))
        h = (1 - z) * n + z * h
        hs.append(h)
    return np.stack(hs, axis=1), steps  # (B, T, H)


def reference_backward(params, x, steps, dh_out):
    """Parameter gradients and the total dL/dh_t (B, T, H) of reference_forward."""
    w_hr, w_hz, w_hn = np.split(params["weight_hh"], 3)
    grads = {name: np.zeros_like(params[name]) for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    dh_total = np.zeros_like(dh_out)
    dh_next = np.zeros_like(dh_out[:, 0])  # dL/dh_t from step t+1
    for t in range(x.shape[1] - 1, -1, -1):
        h_prev, r, z, n, hn = steps[t]
        dh = dh_out[:, t] + dh_next
        da_n = dh * (1 - z) * (1 - n ** 2)  # through h_t's (1 - z) n and tanh
        da_z = dh * (h_prev - n) * z * (1 - z)  # through h_t's z (h_{t-1} - n) and sigmoid
        dhn = da_n * r  # through r * hn
        da_r = da_n * hn * r * (1 - r)
        da_i = np.concatenate([da_r, da_z, da_n], axis=1)  # (B, 3H) at W_i x_t + b_i
        da_h = np.concatenate([da_r, da_z, dhn], axis=1)  # (B, 3H) at W_h h_{t-1} + b_h
        grads["weight_ih"] += da_i.T @ x[:, t]
        grads["weight_hh"] += da_h.T @ h_prev
        grads["bias_ih"] += da_i.sum(axis=0)
        grads["bias_hh"] += da_h.sum(axis=0)
        dh_total[:, t] = dh
        dh_next = dh * z + da_r @ w_hr + da_z @ w_hz + dhn @ w_hn  # the direct path, then the gates
    return grads, dh_total


def direct_path(cache: GRUCache, dh_head: np.ndarray) -> np.ndarray:
    """(T, B, H) the direct part of dL/dh_t (the module docstring's split), time-major;
    dh_head (T, B, H) is the head's gradient at each h_t."""
    z = cache.gate("z")  # (T, B, H)
    direct = np.empty_like(dh_head)
    direct[-1] = dh_head[-1]
    for t in range(len(direct) - 2, -1, -1):
        direct[t] = z[t + 1] * direct[t + 1] + dh_head[t]  # h_{t+1} = ... + z_{t+1} h_t: the belt
    return direct


# ---- the cell ----

class GRUCell(Cell):
    """The GRU: h is its own belt; the direct path is the product of the update gate z."""

    name = "gru"
    label = "GRU"
    gate_names = "".join(GATES)
    direct_gate = "z"
    carrier_words = "||dL/dh|| for a GRU"
    belt_legend = ("belt, gates (GRU): dL/dh split into the direct path along z * h_{t-1} (the product of the "
                   "update gates z: what arrives with h_{t-1} detached before it feeds r, z and n) and the rest, "
                   "through n_t and the gates; each relative to ||dL/dh|| at the loss step.")
    belt_state = "h"
    belt_rest = "the paths through n_t and the gates"

    # memory (cells/base.py): fitted to tracemalloc peaks of its probe
    memory_fixed, weight_copies, words_per_unit, words_per_input, words_per_sequence = 10800.0, 1.13, 13.7, 2.0, 23.3
    forward_words_per_unit = 8.2  # measured: a forward pass alone (tracemalloc)

    def forward(self, params, x, spec):
        return forward(params, x)

    def backward(self, params, cache, dh_out):
        return backward(params, cache, dh_out)

    def reference(self, params, x, dh_out, spec) -> dict:
        h, steps = reference_forward(params, x)
        grads, dh = reference_backward(params, x, steps, dh_out)
        return {"h": h, "grads": grads, "dh": dh}

    def torch_module(self, spec, input_size):
        import torch

        return torch.nn.GRU(input_size, spec.hidden, batch_first=True, dtype=torch.float64)

    def probe(self, profile, params, cache, grads, dh_head, first_answer, tools) -> None:
        """The update gates and the exact split of dL/dh into the direct path and the rest."""
        profile.forget, profile.forget_product = tools.belt_gate(cache.gate("z"))
        direct = direct_path(cache, dh_head)  # (T, B, H)
        tools.belt_split(profile, direct, grads.dh.transpose(1, 0, 2), profile.dh.mean[0])

    def belt_words(self, model: dict) -> tuple[str, str | None]:
        return "z", "update gate"

    def init_words(self, profile) -> tuple[list[str], list[str]]:
        values = [float(v) for v in profile.forget]
        return [], [f"mean update gate {sum(values) / len(values):.2f}"]

    def belt_path_words(self, factor: str, gate: str | None) -> str:
        return f"z * h_{{t-1}} (the product of {factor}, h alone)"

    inspect_clauses = "gru"

    def inner_values(self, params: dict[str, np.ndarray], core: GRUCache) -> dict[str, np.ndarray]:
        return {gate: core.gate(gate) for gate in "zr"}


CELL = GRUCell()
