"""The LSTM's fast kernel: a forget-gate LSTM over a whole sequence, forward and backprop-through-time.

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

Three variants, flags of ``forward`` (``Variant``), each with its exact backward:

- ``peephole`` (Gers & Schmidhuber 2000): the gates also look at the cell,
  diagonally: i_t and f_t add p_i * c_{t-1} and p_f * c_{t-1} to their
  pre-activations, o_t adds p_o * c_t. The backward gains three paths into dc:
      dc_t += p_o * dz_o_t + p_i * dz_i_{t+1} + p_f * dz_f_{t+1}
- ``coupled``: i_t = 1 - f_t, one gate decides both what is dropped and what
  is added (no input-gate parameters); dz_f = dc_t (c_{t-1} - g_t) f_t (1 - f_t).
- ``forget_gate=False``: the original LSTM (Hochreiter & Schmidhuber 1997),
  c_t = c_{t-1} + i_t * g_t, the "constant error carousel": one step back along
  the cell multiplies dc by exactly 1 (no forget-gate parameters).

A variant's parameters hold rows only for the gates that have their own
(``Variant.gates``, in the order i, f, g, o), and a peephole LSTM one more
parameter, ``weight_ch`` (P*H,): the diagonal weights from the cell into each
of its P sigmoid gates, in the same order (p_i, p_f, p_o for the full cell).
Only the default cell loads into ``torch.nn.LSTM``: PyTorch has no peephole,
coupled or forget-gate-free LSTM. Inside, every variant runs the 4-gate kernel
below with zero weight rows for a missing gate, whose activation is then set
(f = 1, i = 1 - f), so that the default LSTM's arithmetic is untouched.

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

The variants change named blocks (``_ROW``) of the same record: a peephole
adds p_i c_{t-1}, p_f c_{t-1} to the i, f pre-activations (block "c" is
c_{t-1}, beside them) and p_o c_t to o's, whose tanh then waits for c_t; a
coupled cell overwrites block i with 1 - f; a cell without a forget gate
overwrites block f with 1, so the belt carries dc_{t+1} unchanged.

Float32 only: the backward flushes subnormal gradient entries to zero once the
carried gradient has vanished (``subnormal.py``); float64 keeps every bit.

The plain reference that this fused kernel is checked against, gate by gate the
way the article writes the equations, is ``cells/lstm_reference.py``
(``reference_forward``, ``reference_backward``, ``reference_step``), and
``cells/lstm.py`` holds the LSTM as the rest of the tool sees it (its ``CELL``:
its belt, its words, its memory).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from lstm_cli.errors import BadInput
from lstm_cli.subnormal import SubnormalFlush

PYTORCH_GATES = "ifgo"  # PyTorch's order of the gate rows


class Variant(NamedTuple):
    """Which LSTM: the default (forget gate, no peepholes) or one of the article's variants."""

    peephole: bool = False
    coupled: bool = False  # i_t = 1 - f_t
    forget_gate: bool = True  # False: c_t = c_{t-1} + i_t g_t (1997)

    def check(self) -> None:
        if self.coupled and not self.forget_gate:
            raise BadInput("model.coupled: coupled=true sets the input gate to 1 - f: it needs the forget gate")

    @property
    def gates(self) -> str:
        """The gates with parameters of their own, in the order of the parameter rows."""
        return "".join(g for g in PYTORCH_GATES
                       if not (g == "i" and self.coupled) and not (g == "f" and not self.forget_gate))

    @property
    def peephole_gates(self) -> str:
        """The gates that weight_ch feeds, in the order of its rows ("" without peepholes)."""
        return "".join(g for g in self.gates if g != "g") if self.peephole else ""

# forward record block k holds PyTorch's gate _ORDER[k] (PyTorch: 0 i, 1 f, 2 g, 3 o)
_ORDER = (3, 0, 1, 2)  # o, i, f, g
_ROW = {"o": 0, "i": 1, "f": 2, "g": 3, "c": 4}  # block of each gate (and of c_{t-1}) in a record


class LSTMCache(NamedTuple):
    inputs: np.ndarray  # (T+1, H+D+1, B) per step t: h_{t-1}, x_t, 1; inputs[T] holds h_T only
    record: np.ndarray  # (T+1, 5H, B) per step t: o_t, i_t, f_t, g_t, c_{t-1}; record[T] holds c_T only
    tanh_c: np.ndarray  # (T, H, B) tanh(c_t)
    variant: Variant = Variant()

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


def _all_gates(rows: np.ndarray, variant: Variant, H: int) -> np.ndarray:
    """A parameter's rows of the variant's gates as PyTorch's 4H rows (i, f, g, o), zero rows
    for the gates the variant lacks."""
    if variant.gates == PYTORCH_GATES:
        return rows
    full = np.zeros((4 * H, *rows.shape[1:]), dtype=rows.dtype)
    for k, gate in enumerate(variant.gates):
        j = PYTORCH_GATES.index(gate)
        full[j * H:(j + 1) * H] = rows[k * H:(k + 1) * H]
    return full


def _own_gates(rows: np.ndarray, variant: Variant, H: int) -> np.ndarray:
    """The inverse of _all_gates: the rows of the variant's own gates out of PyTorch's 4H."""
    if variant.gates == PYTORCH_GATES:
        return rows
    return np.concatenate([rows[j * H:(j + 1) * H] for j in map(PYTORCH_GATES.index, variant.gates)])


def peepholes(params: dict[str, np.ndarray], variant: Variant, H: int) -> dict[str, np.ndarray]:
    """The diagonal peephole weights p_i, p_f, p_o (H,) each, zero where the variant has none."""
    dtype = params["weight_hh"].dtype
    p = {gate: np.zeros(H, dtype=dtype) for gate in "ifo"}
    for k, gate in enumerate(variant.peephole_gates):
        p[gate] = params["weight_ch"][k * H:(k + 1) * H]
    return p


def forward(params: dict[str, np.ndarray], x: np.ndarray, h0: np.ndarray | None = None,
            c0: np.ndarray | None = None, variant: Variant = Variant()) -> tuple[np.ndarray, LSTMCache]:
    """Run the LSTM over x (T, B, D); return h (T, B, H) (a view) and the cache.

    h0, c0 (B, H): the initial state (zeros if None).
    """
    variant.check()
    w_hh = params["weight_hh"]
    dtype = w_hh.dtype
    T, B, D = x.shape
    H = w_hh.shape[1]
    # [W_hh W_ih b] in the record's gate order, the sigmoid rows (o, i, f) halved so
    # that one tanh gives every gate
    bias = (params["bias_ih"] + params["bias_hh"])[:, None]
    w_gates = _to_internal(_all_gates(np.concatenate([w_hh, params["weight_ih"], bias], axis=1), variant, H),
                           H)  # (4H, H+D+1)
    w_gates[:3 * H] *= 0.5
    if variant.peephole:  # halved like the sigmoid rows they add to
        p = peepholes(params, variant, H)
        peep_if = 0.5 * np.stack([p["i"], p["f"]])[:, :, None]  # (2, H, 1)
        peep_o = 0.5 * p["o"][:, None]  # (H, 1)
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
        first = 0
        if variant.peephole:
            a_if = r[H:3 * H].reshape(2, H, B)
            a_if += peep_if * r[4 * H:]  # + p_i c_{t-1}, p_f c_{t-1}
            first = H  # o_t waits for c_t
        tanh(a[first:], a[first:])  # the gates, in place
        sig = r[first:3 * H]
        multiply(sig, 0.5, sig)
        add(sig, 0.5, sig)  # sigmoid(z) = 0.5 + 0.5 tanh(z / 2) for o, i, f
        if not variant.forget_gate:
            r[2 * H:3 * H] = 1.0  # the carousel: c_t = 1 * c_{t-1} + i_t g_t
        if variant.coupled:
            np.subtract(1.0, r[2 * H:3 * H], out=r[H:2 * H])  # i_t = 1 - f_t
        multiply(r[H:3 * H], r[3 * H:], products)  # [i_t * g_t, f_t * c_{t-1}]
        c_t = record[t + 1, 4 * H:]
        add(products[:H], products[H:], c_t)  # c_t = f_t c_{t-1} + i_t g_t
        if variant.peephole:
            o = r[:H]
            o += peep_o * c_t  # + p_o c_t
            tanh(o, o)
            multiply(o, 0.5, o)
            add(o, 0.5, o)
        tanh(c_t, tanh_c[t])
        multiply(r[:H], tanh_c[t], inputs[t + 1, :H])  # h_t = o_t tanh(c_t)
    cache = LSTMCache(inputs=inputs, record=record, tanh_c=tanh_c, variant=variant)
    return cache.states[1:], cache


def backward(params: dict[str, np.ndarray], cache: LSTMCache, dh_out: np.ndarray,
             dc_out: np.ndarray | None = None) -> LSTMGrads:
    """Backprop-through-time.

    dh_out (T, B, H) is the gradient arriving at each h_t from outside the
    recurrence (the head); dc_out likewise for c_t (rarely used). Neither is
    modified. Fastest when dh_out is a (T, B, H) view of a (T, H, B) array
    (``np.zeros_like(h)`` of forward's h gives one).
    """
    inputs, record, tanh_c, variant = cache
    T, H, B = tanh_c.shape
    D = inputs.shape[1] - H - 1
    dtype = record.dtype
    w_back = np.ascontiguousarray(_all_gates(params["weight_hh"], variant, H).T)  # (H, 4H), PyTorch's gate order
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
    if variant.coupled:  # c_t = f_t c_{t-1} + (1 - f_t) g_t: i_t has no pre-activation of its own
        np.subtract(record[:T, 4 * H:], g, out=d_if[:, H:])
        d_if[:, H:] *= f
        d_if[:, H:] *= 1.0 - f  # dz_f = dc [(c_{t-1} - g) f (1 - f)]
        d_if[:, :H] = 0.0
    if variant.peephole:
        p = peepholes(params, variant, H)
        p_i, p_f, p_o = (p[gate][:, None] for gate in "ifo")  # (H, 1)

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
        if variant.peephole:
            dc_t += p_o * w[3 * H:4 * H]  # through o_t's peephole p_o c_t
            if t < T - 1:
                dc_t += p_i * work[t + 1, :H] + p_f * work[t + 1, H:2 * H]  # through i_{t+1}, f_{t+1}'s
        by_dc = w[:3 * H].reshape(3, H, B)
        multiply(by_dc, dc_t, by_dc)  # dz_i, dz_f, dz_g
        flush(t, w)  # dz_t and dc_t, carried to step t-1
        dot(w[:4 * H], inputs_t[t], out=dw_step)  # step t's share: dz_t [h_{t-1}; x_t; 1]^T
        add(dw, dw_step, dw)

    dw = _own_gates(dw, variant, H)
    grads = {
        "weight_ih": np.ascontiguousarray(dw[:, H:H + D]),
        "weight_hh": np.ascontiguousarray(dw[:, :H]),
        "bias_ih": dw[:, H + D].copy(),
        "bias_hh": dw[:, H + D].copy(),
    }
    if variant.peephole:  # dp = sum over steps and sequences of dz times the cell the gate saw
        cell_seen = {"i": record[:T, 4 * H:], "f": record[:T, 4 * H:], "o": record[1:, 4 * H:]}
        dz = {gate: work[:, k * H:(k + 1) * H] for k, gate in enumerate(PYTORCH_GATES)}
        grads["weight_ch"] = np.concatenate([(dz[gate] * cell_seen[gate]).sum(axis=(0, 2))
                                             for gate in variant.peephole_gates])
    dpre = work[:, :4 * H].transpose(0, 2, 1)
    if variant.gates != PYTORCH_GATES:
        dpre = _own_gates(dpre.transpose(2, 0, 1), variant, H).transpose(1, 2, 0)
    return LSTMGrads(params=grads, dh=dh.transpose(0, 2, 1), dc=work[:, 4 * H:].transpose(0, 2, 1), dpre=dpre)
