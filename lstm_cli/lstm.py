"""LSTM with a forget gate over a whole sequence, forward and backprop-through-time.

The equations of "Understanding LSTM Networks" (forget gate: Gers et al. 2000):

    f_t = sigmoid(W_f [h_{t-1}, x_t] + b_f)      forget gate: what to drop from the cell
    i_t = sigmoid(W_i [h_{t-1}, x_t] + b_i)      input gate: which cells to update
    g_t = tanh(W_g [h_{t-1}, x_t] + b_g)         candidate values (C~_t)
    c_t = f_t * c_{t-1} + i_t * g_t              the cell state: the "conveyor belt"
    o_t = sigmoid(W_o [h_{t-1}, x_t] + b_o)      output gate
    h_t = o_t * tanh(c_t)

and their derivatives, the backward pass (dz: gradient of a gate's pre-activation):

    dc_t  = dh_t * o_t * (1 - tanh(c_t)^2) + dc_{t+1} * f_{t+1}     (the belt: through f)
    dz_o  = dh_t * tanh(c_t) * o_t (1 - o_t)
    dz_i  = dc_t * g_t * i_t (1 - i_t)
    dz_f  = dc_t * c_{t-1} * f_t (1 - f_t)
    dz_g  = dc_t * i_t * (1 - g_t^2)
    dh_{t-1} += W_hh^T dz_t                                        (through the gates)

Shapes: T time steps, B batch, D input features, H hidden units. The public
arrays are time-major: x (T, B, D) in, h (T, B, H) out. Parameters use
PyTorch's names and shapes (``torch.nn.LSTM``, gate order i, f, g, o along
the 4H axis): weight_ih (4H, D), weight_hh (4H, H), bias_ih (4H,), bias_hh (4H,).

Inside, for speed, every step's arrays are *feature-major* (H, B) blocks
stacked into one contiguous record per step, so that each numpy call in the
time loop works on a whole contiguous block (a strided gate slice costs
numpy several times more per call) and related blocks are neighbours that
one call can process together:

    inputs[t] (H+D+1, B):       h_{t-1}, x_t, 1
        so one matmul [W_hh W_ih b] inputs[t] gives every gate's pre-activation,
        and one matmul dz_t inputs[t]^T step t's share of [dW_hh dW_ih db]
    record[t] (5H, B):          o_t, i_t, f_t, g_t, c_{t-1}
        rows 0:3H  the sigmoid gates: one affine turns tanh into sigmoid
        rows H:3H times rows 3H:5H = [i_t g_t, f_t c_{t-1}]: both products in one call
    work[t] (5H, B), backward:  dz_i, dz_f, dz_g, dz_o (PyTorch's order), dc_t
        rows 0:3H  the gates that dc_t multiplies; rows 3H:5H the two that dh_t does

(Allocating and transposing whole-sequence arrays costs more than these
small per-step matmuls: the weight gradient is accumulated step by step.)

The cache's ``states``, ``cells`` and ``gate(name)`` give time-major (T, B, H) views.

sigmoid(z) = 0.5 + 0.5 tanh(z / 2): the sigmoid rows of the weights are halved
(exact in floating point) so that one tanh over the fused (4H, B) block gives
all four gates.

Where a variant changes the cell, it changes one named block (``_ROW``), and
the backward reads the same blocks by name (``gate``):
peephole terms add p_i c_{t-1}, p_f c_{t-1} to the i, f pre-activations (row
block "c" is c_{t-1}, beside them) and p_o c_t to o's, which then needs c_t
before o's tanh; a coupled cell computes i = 1 - f instead of i's rows; a cell
without a forget gate has f = 1, so the belt carries dc_{t+1} unchanged.

Float32 only: the backward flushes subnormal gradient entries to zero once the
carried gradient has vanished (``subnormal.py``); float64 keeps every bit.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from lstm_cli.subnormal import SubnormalFlush

# forward record block k holds PyTorch's gate _ORDER[k] (PyTorch: 0 i, 1 f, 2 g, 3 o)
_ORDER = (3, 0, 1, 2)  # o, i, f, g
_ROW = {"o": 0, "i": 1, "f": 2, "g": 3, "c": 4}  # block of each gate (and of c_{t-1}) in a record


class LSTMCache(NamedTuple):
    inputs: np.ndarray  # (T+1, H+D+1, B) per step t: h_{t-1}, x_t, 1; inputs[T] holds h_T only
    record: np.ndarray  # (T+1, 5H, B) per step t: o_t, i_t, f_t, g_t, c_{t-1}; record[T] holds c_T only
    tanh_c: np.ndarray  # (T, H, B) tanh(c_t)

    def _block(self, name: str, steps: slice) -> np.ndarray:
        H = self.tanh_c.shape[1]
        k = _ROW[name]
        return self.record[steps, k * H:(k + 1) * H].transpose(0, 2, 1)

    @property
    def states(self) -> np.ndarray:
        """(T+1, B, H) hidden states h_0 (initial) .. h_T, a view."""
        return self.inputs[:, :self.tanh_c.shape[1]].transpose(0, 2, 1)

    @property
    def cells(self) -> np.ndarray:
        """(T+1, B, H) cell states c_0 (initial) .. c_T, a view."""
        return self._block("c", slice(None))

    def gate(self, name: str) -> np.ndarray:
        """(T, B, H) activated gate "i", "f", "g" or "o" at every step, a view."""
        return self._block(name, slice(0, -1))


class LSTMGrads(NamedTuple):
    params: dict[str, np.ndarray]  # same keys as the recurrent parameters
    dh: np.ndarray  # (T, B, H) total dL/dh_t
    dc: np.ndarray  # (T, B, H) total dL/dc_t
    dpre: np.ndarray  # (T, B, 4H) dL/d(gate pre-activations of step t), PyTorch's gate order


def _to_internal(rows: np.ndarray, H: int) -> np.ndarray:
    """Reorder the 4H gate rows of a parameter from PyTorch's i, f, g, o to o, i, f, g."""
    return rows.reshape(4, H, *rows.shape[1:])[list(_ORDER)].reshape(rows.shape)


def forward(params: dict[str, np.ndarray], x: np.ndarray, h0: np.ndarray | None = None,
            c0: np.ndarray | None = None) -> tuple[np.ndarray, LSTMCache]:
    """Run the LSTM over x (T, B, D); return h (T, B, H) (a view) and the cache.

    h0, c0 (B, H): the initial state (zeros if None).
    """
    w_hh = params["weight_hh"]
    dtype = w_hh.dtype
    T, B, D = x.shape
    H = w_hh.shape[1]
    # [W_hh W_ih b] in the record's gate order, the sigmoid rows (o, i, f) halved so
    # that one tanh gives every gate
    bias = (params["bias_ih"] + params["bias_hh"])[:, None]
    w_gates = _to_internal(np.concatenate([w_hh, params["weight_ih"], bias], axis=1), H)  # (4H, H+D+1)
    w_gates[:3 * H] *= 0.5
    w_gates = w_gates.astype(dtype, copy=False)
    inputs = np.empty((T + 1, H + D + 1, B), dtype=dtype)  # (T+1, H+D+1, B)
    inputs[0, :H] = 0.0 if h0 is None else np.transpose(h0)
    inputs[:T, H:H + D] = x.transpose(0, 2, 1)
    inputs[:T, H + D] = 1.0
    inputs[T, H:] = 0.0  # unused
    record = np.empty((T + 1, 5 * H, B), dtype=dtype)  # (T+1, 5H, B)
    record[0, 4 * H:] = 0.0 if c0 is None else np.transpose(c0)
    tanh_c = np.empty((T, H, B), dtype=dtype)  # (T, H, B)
    products = np.empty((2 * H, B), dtype=dtype)
    dot, tanh, add, multiply = np.dot, np.tanh, np.add, np.multiply
    for t in range(T):
        r = record[t]  # (5H, B)
        a = r[:4 * H]
        dot(w_gates, inputs[t], out=a)  # pre-activations W_hh h_{t-1} + W_ih x_t + b
        tanh(a, a)  # the gates, in place
        sig = r[:3 * H]
        multiply(sig, 0.5, sig)
        add(sig, 0.5, sig)  # sigmoid(z) = 0.5 + 0.5 tanh(z / 2) for o, i, f
        multiply(r[H:3 * H], r[3 * H:], products)  # [i_t * g_t, f_t * c_{t-1}]
        c_t = record[t + 1, 4 * H:]
        add(products[:H], products[H:], c_t)  # c_t = f_t c_{t-1} + i_t g_t
        tanh(c_t, tanh_c[t])
        multiply(r[:H], tanh_c[t], inputs[t + 1, :H])  # h_t = o_t tanh(c_t)
    cache = LSTMCache(inputs=inputs, record=record, tanh_c=tanh_c)
    return cache.states[1:], cache


def backward(params: dict[str, np.ndarray], cache: LSTMCache, dh_out: np.ndarray,
             dc_out: np.ndarray | None = None) -> LSTMGrads:
    """Backprop-through-time.

    dh_out (T, B, H) is the gradient arriving at each h_t from outside the
    recurrence (the head); dc_out likewise for c_t (rarely used). Neither is
    modified. Fastest when dh_out is a (T, B, H) view of a (T, H, B) array
    (``np.zeros_like(h)`` of forward's h gives one).
    """
    inputs, record, tanh_c = cache
    T, H, B = tanh_c.shape
    D = inputs.shape[1] - H - 1
    dtype = record.dtype
    w_back = np.ascontiguousarray(params["weight_hh"].T)  # (H, 4H), PyTorch's gate order
    o, i, f, g = (record[:T, _ROW[name] * H:(_ROW[name] + 1) * H] for name in "oifg")  # (T, H, B) views

    # Every local derivative is known from the forward pass: compute them for all
    # steps at once, outside the loop, straight into `work` (multiplied in place later).
    work = np.empty((T, 5 * H, B), dtype=dtype)  # per step: dz_i, dz_f, dz_g, dz_o, dc_t
    d_if = work[:, :2 * H]
    np.subtract(1.0, record[:T, H:3 * H], out=d_if)
    d_if *= record[:T, H:3 * H]
    d_if *= record[:T, 3 * H:]  # dz_i = dc [g i (1 - i)],  dz_f = dc [c_{t-1} f (1 - f)]
    d_g = work[:, 2 * H:3 * H]
    np.multiply(g, g, out=d_g)
    np.subtract(1.0, d_g, out=d_g)
    d_g *= i  # dz_g = dc [i (1 - g^2)]
    d_o = work[:, 3 * H:4 * H]
    np.subtract(1.0, o, out=d_o)
    d_o *= o
    d_o *= tanh_c  # dz_o = dh [tanh(c) o (1 - o)]
    d_c = work[:, 4 * H:]
    np.multiply(tanh_c, tanh_c, out=d_c)
    np.subtract(1.0, d_c, out=d_c)
    d_c *= o  # dc_t = dh [o (1 - tanh(c)^2)] + dc_{t+1} f_{t+1}

    dh_in = np.asarray(dh_out, dtype=dtype).transpose(0, 2, 1)  # (T, H, B)
    has_out = dh_in.reshape(T, -1).any(axis=1)  # steps where the head sends a gradient
    dc_in = None if dc_out is None else np.asarray(dc_out, dtype=dtype).transpose(0, 2, 1)
    dh = np.empty((T, H, B), dtype=dtype)  # becomes the total dL/dh_t
    dw = np.zeros((4 * H, H + D + 1), dtype=dtype)  # [dW_hh dW_ih db], summed over steps
    inputs_t = np.ascontiguousarray(inputs[:T].transpose(0, 2, 1))  # (T, B, H+D+1): NN matmuls below
    dw_step = np.empty_like(dw)
    belt = np.empty((H, B), dtype=dtype)
    flush = SubnormalFlush(dtype)  # float32 only
    dot, multiply, add = np.dot, np.multiply, np.add
    for t in range(T - 1, -1, -1):
        dh_t, w = dh[t], work[t]  # (H, B), (5H, B)
        if t == T - 1:
            dh_t[...] = dh_in[t]
        else:
            dot(w_back, work[t + 1, :4 * H], out=dh_t)  # through the gates of step t+1
            if has_out[t]:
                add(dh_t, dh_in[t], dh_t)
        by_dh = w[3 * H:].reshape(2, H, B)
        multiply(by_dh, dh_t, by_dh)  # dz_o, and dc_t's share through h_t = o_t tanh(c_t)
        dc_t = w[4 * H:]
        if dc_in is not None:
            add(dc_t, dc_in[t], dc_t)
        if t < T - 1:
            multiply(work[t + 1, 4 * H:], f[t + 1], belt)
            add(dc_t, belt, dc_t)  # the conveyor belt: through c_{t+1} = f_{t+1} c_t + ...
        by_dc = w[:3 * H].reshape(3, H, B)
        multiply(by_dc, dc_t, by_dc)  # dz_i, dz_f, dz_g
        flush(t, w)  # dz_t and dc_t, carried to step t-1
        dot(w[:4 * H], inputs_t[t], out=dw_step)  # step t's share: dz_t [h_{t-1}; x_t; 1]^T
        add(dw, dw_step, dw)

    grads = {
        "weight_ih": np.ascontiguousarray(dw[:, H:H + D]),
        "weight_hh": np.ascontiguousarray(dw[:, :H]),
        "bias_ih": dw[:, H + D].copy(),
        "bias_hh": dw[:, H + D].copy(),
    }
    return LSTMGrads(params=grads, dh=dh.transpose(0, 2, 1), dc=work[:, 4 * H:].transpose(0, 2, 1),
                     dpre=work[:, :4 * H].transpose(0, 2, 1))
