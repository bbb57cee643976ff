"""IndRNN (Li, Li, Cook, Zhu & Gao, "Independently Recurrent Neural Network (IndRNN): Building a
Longer and Deeper RNN", CVPR 2018) over a whole sequence, forward and backprop-through-time.

    h_t = act(x_t W_ih^T + b_ih + b_hh + u * h_{t-1}),   act = tanh or relu

The recurrent weight is a *vector* u (H,), multiplied elementwise: each unit
sees only its own past, so nothing mixes the units over time. One step back
is, unit by unit and exactly,

    dh_{t-1} = u * act'(a_t) * dh_t          (+ the head's gradient at h_{t-1})

so the decay of every unit over k steps is the product of its act' times
|u_j|^k: the split into act' and |u| holds per unit, not only as a bound. With
|u_j| <= 1 and act' <= 1 nothing explodes; a unit with |u_j| near 1 and act'
near 1 (relu in its linear part, tanh near 0) carries the gradient across the
gap. The paper's point is to bound |u| (for relu over T steps, |u| at most
about 1 keeps the gradient from exploding while letting it reach far back).

The probe reports the same split as the vanilla RNN's (``probes``): per
sequence, log10 ||v_t|| / ||dh_t|| for act' (v_t = act'(a_t) * dh_t) and
log10 ||u * v_t|| / ||v_t|| for |u|, summed over the steps back, adding up to
the total; ``bound`` is (max |u|)^k, and the JSON's ``cell`` holds |u|'s mean,
max and min.

Shapes: T time steps, B batch, D input features, H hidden units; time-major
inside: x (T, B, D), h (T, B, H). Parameters: weight_ih (H, D), weight_hh (H,)
(the vector u), bias_ih (H,), bias_hh (H,). PyTorch has no IndRNN module, so
there is no torch mapping; the plain reference is at the end of this module.

Init (``model.init``): "uniform" (and "auto") draws u from U(0, recurrent_scale),
so |u| <= recurrent_scale, 1 by default; "identity" sets u = recurrent_scale
exactly (every unit an integrator, the IRNN's choice for a vector) and the
biases to zero; "orthogonal" means nothing for a vector and is refused.
weight_ih and the biases are U(-1/sqrt(H), 1/sqrt(H)), as for the other cells.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from lstm_cli.cells.base import Cell, activation_values, changed
from lstm_cli.errors import BadInput
from lstm_cli.printed import significant
from lstm_cli.subnormal import SubnormalFlush


class IndRNNCache(NamedTuple):
    x: np.ndarray  # (T, B, D) inputs, time-major
    h: np.ndarray  # (T+1, B, H) hidden states; h[0] is the initial state
    activation: str

    @property
    def states(self) -> np.ndarray:
        """(T+1, B, H) hidden states h_0 (initial) .. h_T."""
        return self.h


class IndRNNGrads(NamedTuple):
    params: dict[str, np.ndarray]  # same keys as the recurrent parameters
    dh: np.ndarray  # (T, B, H) total dL/dh_t
    dpre: np.ndarray  # (T, B, H) dL/d(pre-activation a_t)


def forward(params: dict[str, np.ndarray], x: np.ndarray, h0: np.ndarray | None = None,
            activation: str = "tanh") -> tuple[np.ndarray, IndRNNCache]:
    """Run the IndRNN over x (T, B, D); return h (T, B, H) and the cache."""
    u = params["weight_hh"]
    dtype = u.dtype
    T, B, D = x.shape
    H = u.shape[0]
    # the input projection of every step in one matmul, both biases folded in
    pre = x.reshape(T * B, D).astype(dtype, copy=False) @ params["weight_ih"].T  # (T*B, H)
    pre = pre.reshape(T, B, H)
    pre += params["bias_ih"] + params["bias_hh"]
    h = np.empty((T + 1, B, H), dtype=dtype)  # (T+1, B, H)
    h[0] = 0.0 if h0 is None else h0
    for t in range(T):
        a = pre[t]
        a += u * h[t]  # a_t = W_ih x_t + b + u * h_{t-1}
        if activation == "tanh":
            np.tanh(a, out=h[t + 1])
        else:
            np.maximum(a, 0.0, out=h[t + 1])
    return h[1:], IndRNNCache(x=x, h=h, activation=activation)


def backward(params: dict[str, np.ndarray], cache: IndRNNCache, dh_out: np.ndarray) -> IndRNNGrads:
    """Backprop-through-time, unit by unit:

        dpre_t   = dh_t * act'(a_t)        act' = 1 - h_t^2 (tanh), [h_t > 0] (relu)
        dh_{t-1} = u * dpre_t (+ the head's gradient at h_{t-1})
    """
    x, h = cache.x, cache.h
    T, B, H = dh_out.shape
    u = params["weight_hh"]
    dtype = u.dtype
    dpre = np.empty((T, B, H), dtype=dtype)  # act'(a_t), then times dh_t in the loop
    if cache.activation == "tanh":
        np.multiply(h[1:], h[1:], out=dpre)
        np.subtract(1.0, dpre, out=dpre)
    else:
        np.greater(h[1:], 0.0, out=dpre)
    dh_in = np.asarray(dh_out, dtype=dtype)
    dh = np.empty((T, B, H), dtype=dtype)  # becomes the total dL/dh_t
    flush = SubnormalFlush(dtype)  # float32 only
    for t in range(T - 1, -1, -1):
        if t == T - 1:
            dh[t] = dh_in[t]
        else:
            np.multiply(dpre[t + 1], u, out=dh[t])  # carried back through u, unit by unit
            dh[t] += dh_in[t]
        np.multiply(dpre[t], dh[t], out=dpre[t])  # backprop through the activation
        flush(t, dpre[t])
    dpre_flat = dpre.reshape(T * B, H)
    db = dpre_flat.sum(axis=0)
    grads = {
        "weight_ih": dpre_flat.T @ x.reshape(T * B, -1).astype(dtype, copy=False),  # sum_t dpre_t^T x_t
        "weight_hh": (dpre * h[:-1]).sum(axis=(0, 1)),  # sum_t sum_b dpre_t * h_{t-1}
        "bias_ih": db,
        "bias_hh": db.copy(),
    }
    return IndRNNGrads(params=grads, dh=dh, dpre=dpre)


# ---- the plain reference: the equations one step at a time, batch-major ----

def reference_forward(params, x, activation="tanh"):
    """h (B, T, H) and the list of states h_0 .. h_T."""
    u, b = params["weight_hh"], params["bias_ih"] + params["bias_hh"]
    h = np.zeros((x.shape[0], u.shape[0]))
    hs = [h]
    for t in range(x.shape[1]):
        a = x[:, t] @ params["weight_ih"].T + b + u * h  # (B, H)
        h = np.tanh(a) if activation == "tanh" else np.maximum(a, 0.0)
        hs.append(h)
    return np.stack(hs[1:], axis=1), hs


def reference_backward(params, x, hs, dh_out, activation="tanh"):
    """Parameter gradients and the total dL/dh_t (B, T, H) of reference_forward."""
    u = params["weight_hh"]
    grads = {name: np.zeros_like(params[name]) for name in ("weight_ih", "weight_hh", "bias_ih")}
    dh_total = np.zeros_like(dh_out)
    dh_next = np.zeros_like(hs[0])
    for t in range(x.shape[1] - 1, -1, -1):
        dh = dh_out[:, t] + dh_next
        h = hs[t + 1]
        dpre = dh * (1.0 - h ** 2) if activation == "tanh" else dh * (h > 0)
        grads["weight_ih"] += dpre.T @ x[:, t]
        grads["weight_hh"] += (dpre * hs[t]).sum(axis=0)
        grads["bias_ih"] += dpre.sum(axis=0)
        dh_total[:, t] = dh
        dh_next = u * dpre  # each unit to itself
    grads["bias_hh"] = grads["bias_ih"].copy()
    return grads, dh_total


# ---- the cell ----

class IndRNNCell(Cell):
    """IndRNN: a recurrent weight vector u; each step back splits exactly into act' and |u|."""

    name = "indrnn"
    label = "IndRNN"
    settings = Cell.settings + ("activation",)
    examples = ("indrnn:activation=relu", "indrnn:init=identity")
    gate_names = "h"
    split_names = ("{activation}'", "|u|")
    carrier_words = "||dL/dh|| for an IndRNN"
    split_legend = "log10 ||u * v_t||/||v_t|| (v_t = act'(a_t) * dh_t) for the recurrent vector u"
    bound_legend = ("bound (IndRNN): (max |u|)^k, the most any unit's gradient can grow over k steps back "
                    "(act' <= 1 for tanh and relu).")
    # memory (cells/base.py): fitted to tracemalloc peaks of its probe
    memory_fixed, weight_copies, words_per_unit, words_per_input, words_per_sequence = 13700.0, 1.16, 6.6, 1.45, 3.4
    forward_words_per_unit = 2.1  # measured: a forward pass alone (tracemalloc)

    def describe(self, spec) -> dict:
        return {"activation": spec.activation}

    def check(self, spec) -> None:
        if spec.init == "orthogonal":
            raise BadInput(f"model.init: orthogonal does not apply to the {self.name} (its recurrent weight "
                           f"is a vector); use uniform (u in [0, recurrent_scale]) or identity (u = recurrent_scale)")

    def resolve_init(self, spec) -> str:
        return "uniform"

    def param_shapes(self, spec, input_size):
        H = spec.hidden
        return {"weight_ih": (H, input_size), "weight_hh": (H,), "bias_ih": (H,), "bias_hh": (H,)}

    def init_params(self, spec, input_size, output_size, rng):
        H, D, K = spec.hidden, input_size, output_size
        bound = 1.0 / math.sqrt(H)
        params = {
            "weight_ih": rng.uniform(-bound, bound, size=(H, D)),
            "weight_hh": rng.uniform(0.0, 1.0, size=H),  # u in [0, 1): |u| <= 1, then scaled
            "bias_ih": rng.uniform(-bound, bound, size=H),
            "bias_hh": rng.uniform(-bound, bound, size=H),
            "head.weight": rng.uniform(-bound, bound, size=(K, H)),
            "head.bias": rng.uniform(-bound, bound, size=K),
        }
        if spec.init == "identity":
            params["weight_hh"] = np.ones(H)
            params["bias_ih"][:] = 0.0
            params["bias_hh"][:] = 0.0
        params["weight_hh"] *= spec.recurrent_scale
        return params

    def forward(self, params, x, spec):
        return forward(params, x, activation=spec.activation)

    def backward(self, params, cache, dh_out):
        return backward(params, cache, dh_out)

    def reference(self, params, x, dh_out, spec) -> dict:
        h, hs = reference_forward(params, x, activation=spec.activation)
        grads, dh = reference_backward(params, x, hs, dh_out, activation=spec.activation)
        return {"h": h, "grads": grads, "dh": dh}

    def step_weight_grad(self, dpre, h_prev):
        return (dpre * h_prev).sum(axis=1)  # (T, H): step t's share of dL/du

    def weight_grad_bytes(self, hidden: int) -> float:
        return 8.0 * self.weight_copies * 3 * hidden  # the share of dL/du is a vector per step

    def probe(self, profile, params, cache, grads, dh_head, first_answer, tools) -> None:
        """|h_t|, |u|'s numbers, the bound (max |u|)^k and the split into act' and |u|."""
        profile.h_abs = np.abs(cache.states[1:]).mean(axis=(1, 2))[::-1]
        u = np.abs(params["weight_hh"].astype(np.float64))
        profile.sigma_max = profile.spectral_radius = float(u.max())  # of diag(u)
        profile.cell_numbers = {"u_mean": float(u.mean()), "u_max": float(u.max()), "u_min": float(u.min()),
                                "units_u_at_least_0.9": int((u >= 0.9).sum())}
        with np.errstate(over="ignore"):
            profile.bound = profile.sigma_max ** profile.steps_back.astype(np.float64)
        profile.decades_activation, profile.decades_recurrent, profile.decades_total = tools.recurrent_split(
            grads.dh.transpose(1, 0, 2), grads.dpre.transpose(1, 0, 2), first_answer)

    def init_words(self, profile) -> tuple[list[str], list[str]]:
        act = profile.model.get("activation", "tanh")
        n = profile.cell_numbers
        return ([] if act == "tanh" else [f"{act} activation"]), [
            f"|u| mean {n['u_mean']:.2f}, max {n['u_max']:.3g}, {n['units_u_at_least_0.9']} units with |u| >= 0.9"]

    def split_about(self, profile) -> dict[str, str]:
        act = profile.model.get("activation", "tanh")
        slope = profile.summary.get("activation_slope")
        n = profile.cell_numbers
        return {"activation": f"mean {act}' {slope:.2f}" if slope is not None else f"mean {act}' n/a",
                "recurrent": f"mean |u| {n['u_mean']:.2f}, max {n['u_max']:.3g}"}

    def explain_cause(self, profile, cause: str, lost: bool, trained: bool) -> str:
        act = profile.model.get("activation", "tanh")
        n = profile.cell_numbers
        if cause == "recurrent":
            if lost and significant(n["u_max"], 3) < 1:  # as printed, {:.3g}
                proposal = {"init": "identity", "recurrent_scale": 1.0}
                advice = ("" if trained else f" With {' and '.join(changed(profile.model, **proposal))} "
                          f"(--model {profile.model_text(**proposal)}), every u_j = 1: only {act}' is left.")
                return (f"The main cause is |u|: each unit passes the gradient back times its own |u_j| at every "
                        f"step, and here every |u_j| < 1 (max {n['u_max']:.3g}, mean {n['u_mean']:.2f}), so each "
                        f"unit's share shrinks like |u_j|^k whatever {act}' does.{advice}")
            if not lost and significant(n["u_max"], 3) > 1:
                return (f"The main cause is |u|: units with |u_j| > 1 (max {n['u_max']:.3g}) multiply their "
                        f"gradient up at every step back faster than {act}' takes it down.")
            return (f"The main cause is |u|: along the units the gradient takes it "
                    f"{'shrinks' if lost else 'grows'}, although max |u| is {n['u_max']:.3g}.")
        slope = profile.summary.get("activation_slope")
        slope_words = "n/a" if slope is None else f"{slope:.2f}"
        if act == "tanh":
            why = f"each unit passes the gradient times tanh' = 1 - h^2 (mean tanh' {slope_words})"
        else:
            why = f"each unit that is off (h = 0) passes no gradient (mean {act}' {slope_words})"
        return (f"The main cause is {act}': {why}, and the gradient {'shrinks' if lost else 'grows'} "
                f"step after step.")

    def inner_values(self, params: dict[str, np.ndarray], core: IndRNNCache) -> dict[str, np.ndarray]:
        h_prev = core.h[:-1]  # (T, B, H)
        pre = core.x.astype(h_prev.dtype, copy=False) @ params["weight_ih"].T + params["weight_hh"] * h_prev
        pre += params["bias_ih"] + params["bias_hh"]  # (T, B, H)
        return activation_values(pre, core.h[1:], core.activation)


CELL = IndRNNCell()
