"""Vanilla (Elman) RNN over a whole sequence, forward and backprop-through-time.

    h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh),   act = tanh or relu

Shapes: B batch, T time steps, D input features, H hidden units.
Inside this module arrays are *time-major* (T, B, ...) so that every step is
one contiguous block; ``models`` turns them into the batch-major public API.
The plain reference that the fast kernel is checked against is at the end of
this module (``reference_forward``, ``reference_backward``), and ``CELL`` is
what the rest of the tool asks about the vanilla RNN: its split of each step
back into act' and W_hh (``probes``) and the words for it.

Parameters use PyTorch's names and shapes (``torch.nn.RNN``):
weight_ih (H, D), weight_hh (H, H), bias_ih (H,), bias_hh (H,).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from lstm_cli.cells.base import ARTICLE, Cell, activation_values, changed
from lstm_cli.errors import BadInput
from lstm_cli.printed import rounded
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


# ---- the plain reference: the equations one step at a time, batch-major, nothing fused ----

def reference_forward(params, x, h0=None, activation="tanh"):
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


def reference_backward(params, x, hs, dh_out, activation="tanh"):
    """Parameter gradients and the total dL/dh_t (B, T, H) of reference_forward."""
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


# ---- the cell ----

class RNNCell(Cell):
    """The vanilla (Elman) RNN: one gate block; each step back splits into act' and W_hh."""

    name = "rnn"
    label = "vanilla RNN"
    settings = Cell.settings + ("activation",)
    examples = ("rnn:activation=relu",)
    gate_names = "h"
    split_names = ("{activation}'", "W_hh")
    carrier_words = "||dL/dh|| for an RNN"
    split_legend = "log10 ||W_hh^T u_t||/||u_t|| for the recurrent matrix"
    bound_legend = ("bound: (gamma * sigma_max(W_hh))^k with gamma = max act' = 1 for tanh and relu, the upper "
                    "bound on ||dh_T/dh_t|| over k steps back (Pascanu, Mikolov & Bengio 2013); over long "
                    "products the recurrent share tends to the spectral radius, not to sigma_max.")

    # memory (cells/base.py): fitted to tracemalloc peaks of its probe
    memory_fixed, weight_copies, words_per_unit, words_per_input, words_per_sequence = 13400.0, 1.2, 4.8, 1.7, 16.0
    forward_words_per_unit = 2.1  # measured: a forward pass alone (tracemalloc)

    def describe(self, spec) -> dict:
        return {"activation": spec.activation}

    def forward(self, params, x, spec):
        return forward(params, x, activation=spec.activation)

    def backward(self, params, cache, dh_out):
        return backward(params, cache, dh_out)

    def reference(self, params, x, dh_out, spec) -> dict:
        h, hs = reference_forward(params, x, activation=spec.activation)
        grads, dh = reference_backward(params, x, hs, dh_out, activation=spec.activation)
        return {"h": h, "grads": grads, "dh": dh}

    def torch_module(self, spec, input_size):
        import torch

        return torch.nn.RNN(input_size, spec.hidden, nonlinearity=spec.activation, batch_first=True,
                            dtype=torch.float64)

    def probe(self, profile, params, cache, grads, dh_head, first_answer, tools) -> None:
        """|h_t|, sigma_max and rho of W_hh, the bound (gamma sigma_max)^k and the split."""
        profile.h_abs = np.abs(cache.states[1:]).mean(axis=(1, 2))[::-1]
        w_hh = params["weight_hh"].astype(np.float64)
        profile.sigma_max = float(np.linalg.norm(w_hh, 2))
        profile.spectral_radius = float(np.max(np.abs(np.linalg.eigvals(w_hh))))
        with np.errstate(over="ignore"):
            profile.bound = profile.sigma_max ** profile.steps_back.astype(np.float64)
        profile.decades_activation, profile.decades_recurrent, profile.decades_total = tools.recurrent_split(
            grads.dh.transpose(1, 0, 2), grads.dpre.transpose(1, 0, 2), first_answer)

    def init_words(self, profile) -> tuple[list[str], list[str]]:
        act = profile.model.get("activation", "tanh")
        return ([] if act == "tanh" else [f"{act} activation"]), [f"sigma_max(W_hh) {_number(profile.sigma_max)}, "
                f"spectral radius {_number(profile.spectral_radius)}"]

    def split_about(self, profile) -> dict[str, str]:
        act = profile.model.get("activation", "tanh")
        slope = profile.summary.get("activation_slope")
        rho = profile.spectral_radius
        return {"activation": f"mean {act}' {slope:.2f}" if slope is not None else f"mean {act}' n/a",
                "recurrent": f"spectral radius {rho:.2f}" if rho is not None else "spectral radius n/a"}

    def explain_cause(self, profile, cause: str, lost: bool, trained: bool) -> str:
        return cause_sentence(profile, cause, lost, trained)

    def inner_values(self, params: dict[str, np.ndarray], core: RNNCache) -> dict[str, np.ndarray]:
        h_prev = core.h[:-1]  # (T, B, H)
        pre = core.x.astype(h_prev.dtype, copy=False) @ params["weight_ih"].T + h_prev @ params["weight_hh"].T
        pre += params["bias_ih"] + params["bias_hh"]  # (T, B, H)
        return activation_values(pre, core.h[1:], core.activation)


def radius_one_advice(profile, act: str) -> str:
    """What removes W_hh's share: an orthogonal W_hh at recurrent scale 1 (spectral radius 1, so
    ||W_hh^T u|| = ||u|| at every step back), as a --model text that keeps the model's other
    settings, naming only what it changes."""
    proposal = {"init": "orthogonal", "recurrent_scale": 1.0}
    what = " and ".join(changed(profile.model, **proposal))
    return f" With {what} (--model {profile.model_text(**proposal)}), W_hh of radius 1 keeps the norm: only {act}' is left."


def _number(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3g}"


def cause_sentence(profile, cause: str, lost: bool, trained: bool) -> str:
    """What the main cause is, in the numbers of the profile."""
    act = profile.model.get("activation", "tanh")
    slope = profile.summary.get("activation_slope")
    rho = profile.spectral_radius if profile.spectral_radius is not None else math.nan
    if cause == "recurrent":
        if lost and rounded(rho, 2) < 1:  # compared as printed, {rho:.2f}
            advice = "" if trained else radius_one_advice(profile, act)
            return (f"The main cause is W_hh, not {act}: its spectral radius {rho:.2f} < 1 shrinks the "
                    f"gradient at every step back whatever {act}' does.{advice}")
        if not lost and rounded(rho, 2) > 1:
            return (f"The main cause is W_hh: the gradient grows because its spectral radius {rho:.2f} > 1 "
                    f"multiplies it up at every step back faster than {act}' takes it down.")
        return (f"The main cause is W_hh: along the directions the gradient takes, it "
                f"{'shrinks' if lost else 'grows'} it, although its spectral radius is {rho:.2f} (the radius "
                f"rules only over long products).")
    mean_h = float(sum(profile.h_abs) / len(profile.h_abs)) if profile.h_abs is not None else math.nan
    if act == "tanh":
        why = (f"each unit passes the gradient times tanh' = 1 - h^2, the less the closer it saturates "
               f"(|h| near 1; here mean |h| {mean_h:.2f}, mean tanh' {slope:.2f})")
        article = (f' This is the case that study notes of the article ({ARTICLE}) call "tanh multiplied '
                   f'repeatedly"; the article itself does not say it.' if lost else "")
    else:
        why = f"each unit that is off (h = 0) passes no gradient (mean {act}' {slope:.2f})"
        article = ""
    verb = "shrinks" if lost else "grows"
    return f"The main cause is {act}': {why}, and the gradient {verb} step after step.{article}"


CELL = RNNCell()
