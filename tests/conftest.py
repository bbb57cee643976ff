"""Shared helpers for the engine tests: centred-difference gradients and relative error.

The gradient checks follow cs231n's eval_numerical_gradient_array: perturb one
entry at a time, in float64, and compare with the analytic gradient. We use
the sixth-order centred stencil

    f'(x) ~ (45 d(e) - 9 d(2e) + d(3e)) / (60 e),   d(s) = f(x + s) - f(x - s)

whose truncation error is O(e^6): with e = 5e-3 truncation stays below the
rounding error, which is ~1e-14 absolute for an O(1) loss (1e-16 / e), so a
tolerance of 1e-7 has a margin while any wrong term (O(1) relative) fails.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pytest

# tiny sizes for every gradient check (STYLE.md)
B, T, D, H = 2, 4, 3, 5
GRAD_TOL = 1e-7


def numerical_gradient(f: Callable[[], float], array: np.ndarray, step: float = 5e-3) -> np.ndarray:
    """d f / d array by centred differences; ``array`` is perturbed in place and restored."""
    grad = np.zeros_like(array, dtype=np.float64)
    flat, gflat = array.reshape(-1), grad.reshape(-1)
    assert np.shares_memory(flat, array), "array must be contiguous so that it can be perturbed in place"
    for i in range(flat.size):
        old = flat[i]
        diff = {}
        for k in (1, 2, 3):
            flat[i] = old + k * step
            up = f()
            flat[i] = old - k * step
            diff[k] = up - f()
        flat[i] = old
        gflat[i] = (45.0 * diff[1] - 9.0 * diff[2] + diff[3]) / (60.0 * step)
    return grad


def relative_error(numerical: np.ndarray, analytic: np.ndarray) -> float:
    """max_i |n_i - a_i| / max(|n_i|, |a_i|, floor), floor = 1e-4 * the largest magnitude.

    Element-wise relative error for every entry within a factor 1e4 of the
    array's largest; entries smaller than that are held to an absolute error
    of 1e-4 * tol * the largest. The floor exists because a centred difference
    of an O(1) loss carries ~1e-14 of rounding error: an entry of 1e-9 cannot
    be resolved to 1e-7 of itself, and entries that are zero in both would
    turn into 0/0.
    """
    numerical, analytic = np.asarray(numerical, np.float64), np.asarray(analytic, np.float64)
    assert numerical.shape == analytic.shape, (numerical.shape, analytic.shape)
    scale = max(np.abs(numerical).max(initial=0.0), np.abs(analytic).max(initial=0.0))
    floor = max(1e-4 * scale, 1e-300)
    denom = np.maximum(np.maximum(np.abs(numerical), np.abs(analytic)), floor)
    return float((np.abs(numerical - analytic) / denom).max(initial=0.0))


def assert_gradients_match(name: str, numerical: np.ndarray, analytic: np.ndarray,
                           tol: float = GRAD_TOL) -> None:
    err = relative_error(numerical, analytic)
    assert err < tol, f"gradient of {name}: max relative error {err:.3e} >= {tol:g}"


# what a user's shell may set that changes how the tool renders: every test starts without them
# (a test that wants one sets it), so the suite passes whatever the user's terminal is
TERMINAL_VARIABLES = ("NO_COLOR", "FORCE_COLOR", "CLICOLOR", "CLICOLOR_FORCE", "COLUMNS", "LINES", "TERM",
                      "COLORTERM", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "PYTHONIOENCODING")


@pytest.fixture(autouse=True)
def plain_terminal(monkeypatch):
    for name in TERMINAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


# --- model-level gradient checks shared by test_rnn.py and test_lstm.py ------------------

def model_loss(params, x, y, answer_steps, loss_name, spec) -> float:
    """The batch-mean loss L of models.forward: the function every gradient is checked on."""
    from lstm_cli import losses, models

    out, _ = models.forward(params, x, answer_steps=answer_steps, spec=spec)
    per_seq, _ = losses.loss_and_grad(loss_name, out, y, reduction="mean")
    return float(per_seq.mean())


def check_parameter_gradients(params, x, y, answer_steps, loss_name, spec) -> None:
    """Every parameter's analytic gradient (models.backward) against centred differences."""
    from lstm_cli import losses, models

    out, cache = models.forward(params, x, answer_steps=answer_steps, spec=spec)
    _, dout = losses.loss_and_grad(loss_name, out, y, reduction="mean")
    grads = models.backward(params, cache, dout)
    assert set(grads.params) == set(params)
    for name, value in params.items():
        assert grads.params[name].shape == value.shape, name
        numerical = numerical_gradient(
            lambda: model_loss(params, x, y, answer_steps, loss_name, spec), value)
        assert_gradients_match(name, numerical, grads.params[name])


def loss_from_state(params, x, y, answer_steps, loss_name, t, h_t, c_t=None, activation="tanh") -> float:
    """L as a function of the state (h_t, c_t) at step t, everything before it held fixed.

    The steps after t are run by the same core forward with (h_t, c_t) as its
    initial state; the head reads h_t itself when t is an answer step. So the
    derivative of this function is the *total* dL/dh_t (dL/dc_t) that
    backprop-through-time must return.
    """
    from lstm_cli import losses
    from lstm_cli.cells import lstm_kernel, rnn

    x_tm = np.ascontiguousarray(np.transpose(x, (1, 0, 2)))  # (T, B, D)
    steps = x_tm.shape[0]
    if c_t is None:
        h_full, _ = rnn.forward(params, x_tm, activation=activation)
        h_after, _ = rnn.forward(params, x_tm[t + 1:], h0=h_t, activation=activation)
    else:
        h_full, _ = lstm_kernel.forward(params, x_tm)
        h_after, _ = lstm_kernel.forward(params, x_tm[t + 1:], h0=h_t, c0=c_t)
    outs = []
    for s in answer_steps:
        s = s % steps
        h_s = h_full[s] if s < t else (h_t if s == t else h_after[s - t - 1])  # (B, H)
        outs.append(h_s @ params["head.weight"].T + params["head.bias"])  # (B, K)
    per_seq, _ = losses.loss_and_grad(loss_name, np.stack(outs, axis=1), y, reduction="mean")
    return float(per_seq.mean())


def assert_float32_agrees_with_float64(spec, seed: int) -> None:
    """Forward and backward of ``spec`` in float32 stay in float32 and agree with float64
    (outputs, every parameter gradient, dL/dh_t and, for the LSTM, dL/dc_t) to 1e-4."""
    from lstm_cli import losses, models

    rng = np.random.default_rng(seed)
    p64 = models.init_params(spec, 6, 4, rng)
    p32 = {k: v.astype(np.float32) for k, v in p64.items()}
    x = rng.standard_normal((8, 30, 6))
    y = rng.integers(0, 4, size=(8, 1))
    results = {}
    for name, params in (("64", p64), ("32", p32)):
        out, cache = models.forward(params, x, spec=spec)
        _, dout = losses.loss_and_grad("cross_entropy", out, y)
        grads = models.backward(params, cache, dout)
        assert out.dtype == params["weight_hh"].dtype and grads.dh.dtype == out.dtype
        assert grads.dc is None or grads.dc.dtype == out.dtype
        assert all(g.dtype == out.dtype for g in grads.params.values())
        results[name] = (out, grads)
    (o64, g64), (o32, g32) = results["64"], results["32"]
    np.testing.assert_allclose(o32, o64, rtol=1e-4, atol=1e-5)
    for name in p64:
        scale = np.abs(g64.params[name]).max()
        np.testing.assert_allclose(g32.params[name], g64.params[name], rtol=0, atol=1e-4 * scale,
                                   err_msg=name)
    for name in ("dh", "dc"):
        a64, a32 = getattr(g64, name), getattr(g32, name)
        if a64 is not None:
            np.testing.assert_allclose(a32, a64, rtol=0, atol=1e-4 * np.abs(a64).max(), err_msg=name)


def assert_float32_flushes_a_vanished_gradient(module, p64, x, dh_out) -> None:
    """``module``'s float32 backward (rnn or lstm, time-major arrays) on a gradient that decays,
    over the sequence, below float32's smallest normal number: from the first check after it
    fell below subnormal.WATCH, no carried entry (dpre, and dc for the LSTM) is subnormal,
    and everything still agrees with float64."""
    from lstm_cli import subnormal

    g64 = module.backward(p64, module.forward(p64, x)[1], dh_out)
    p32 = {name: value.astype(np.float32) for name, value in p64.items()}
    g32 = module.backward(p32, module.forward(p32, x.astype(np.float32))[1], dh_out.astype(np.float32))
    tiny = np.finfo(np.float32).tiny
    assert np.abs(g64.dpre[0]).max() < tiny, "the float64 gradient must vanish below float32's range"
    watched = np.flatnonzero(np.abs(g64.dpre).max(axis=(1, 2)) >= subnormal.WATCH).min()
    names = [name for name in ("dpre", "dc") if getattr(g32, name, None) is not None]
    for name in names:
        carried = getattr(g32, name)[:watched - subnormal.WATCH_EVERY]
        assert carried.size, "the test needs steps after the first check"
        assert not ((carried != 0) & (np.abs(carried) < tiny)).any(), f"{name}: subnormal entries left"
    for name in ["dh"] + names:
        got, want = getattr(g32, name), getattr(g64, name)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * np.abs(want).max(), err_msg=name)
    for name, value in g64.params.items():
        np.testing.assert_allclose(g32.params[name], value, rtol=0, atol=1e-5 * np.abs(value).max(), err_msg=name)
