"""The LSTM (lstm_cli/cells/lstm_kernel.py through models.forward/backward): exact BPTT gradients."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import (B, D, H, T, assert_float32_agrees_with_float64,
                      assert_float32_flushes_a_vanished_gradient, assert_gradients_match,
                      check_parameter_gradients, loss_from_state, numerical_gradient)


from lstm_cli import losses, models
from lstm_cli.cells import lstm_kernel, lstm_reference


LSTM_SPEC = models.ModelSpec(kind="lstm", hidden=H)


def lstm_params(rng, K=3, **settings):
    spec = models.ModelSpec(kind="lstm", hidden=H, **settings)
    params = models.init_params(spec, D, K, rng)
    # larger weights than the init so the gates leave their linear region; the biases
    # stay as initialised (forget bias, chrono)
    return {name: value * 2.0 if "weight" in name else value for name, value in params.items()}


def test_forward_matches_the_equations():
    rng = np.random.default_rng(3)
    params = lstm_params(rng)
    x = rng.standard_normal((B, 6, D))
    h_ref, c_ref, _ = lstm_reference.reference_forward(params, x)
    h, cache = lstm_kernel.forward(params, np.ascontiguousarray(x.transpose(1, 0, 2)))
    np.testing.assert_allclose(h.transpose(1, 0, 2), h_ref, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(cache.cells[1:].transpose(1, 0, 2), c_ref, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("settings", [{}, {"forget_bias": 0.0}, {"chrono": 4.0}])
@pytest.mark.parametrize("answer_steps", [(-1,), (1, -1)])
def test_parameter_gradients_cross_entropy(settings, answer_steps):
    rng = np.random.default_rng(17)
    params = lstm_params(rng, **settings)
    x = rng.standard_normal((B, T, D))
    y = rng.integers(0, 3, size=(B, len(answer_steps)))
    check_parameter_gradients(params, x, y, answer_steps, "cross_entropy", LSTM_SPEC)


def test_parameter_gradients_mse():
    rng = np.random.default_rng(18)
    params = lstm_params(rng, K=1)
    x = rng.standard_normal((B, T, D))
    y = rng.standard_normal((B, 1))
    check_parameter_gradients(params, x, y, (-1,), "mse", LSTM_SPEC)


@pytest.mark.parametrize("answer_steps", [(-1,), (0, 2, -1)])
def test_dh_and_dc_are_the_total_derivatives_of_the_loss(answer_steps):
    """Backward's dh[:, t], dc[:, t] against centred differences of L w.r.t. h_t and c_t.

    Perturbing c_t also moves h_t = o_t tanh(c_t) (o_t held fixed, as it does not
    depend on c_t), because dL/dc_t is the total derivative through both paths.
    """
    rng = np.random.default_rng(19)
    params = lstm_params(rng)
    x = rng.standard_normal((B, T, D))
    y = rng.integers(0, 3, size=(B, len(answer_steps)))
    out, cache = models.forward(params, x, answer_steps=answer_steps, spec=LSTM_SPEC)
    _, dout = losses.loss_and_grad("cross_entropy", out, y)
    grads = models.backward(params, cache, dout)
    assert grads.dh.shape == grads.dc.shape == (B, T, H)
    core = cache.core
    for t in range(T):
        h_t, c_t = core.states[t + 1].copy(), core.cells[t + 1].copy()  # (B, H)
        numerical = numerical_gradient(
            lambda: loss_from_state(params, x, y, answer_steps, "cross_entropy", t, h_t, c_t), h_t)
        assert_gradients_match(f"dh[:, {t}]", numerical, grads.dh[:, t])

        o_t = core.gate("o")[t]  # (B, H) output gate of step t
        c_var = c_t.copy()

        def loss_of_c():
            return loss_from_state(params, x, y, answer_steps, "cross_entropy", t,
                                   o_t * np.tanh(c_var), c_var)

        assert_gradients_match(f"dc[:, {t}]", numerical_gradient(loss_of_c, c_var), grads.dc[:, t])


def test_core_backward_with_gradients_at_every_step():
    """lstm_kernel.backward on its own, with outside gradients at every h_t and c_t (a linear loss)."""
    rng = np.random.default_rng(20)
    params = lstm_params(rng)
    x = rng.standard_normal((T, B, D))
    h0, c0 = rng.standard_normal((B, H)), rng.standard_normal((B, H))
    wh, wc = rng.standard_normal((T, B, H)), rng.standard_normal((T, B, H))  # L = sum(wh h + wc c)

    def loss():
        h, cache = lstm_kernel.forward(params, x, h0=h0, c0=c0)
        return float((h * wh).sum() + (cache.cells[1:] * wc).sum())

    _, cache = lstm_kernel.forward(params, x, h0=h0, c0=c0)
    grads = lstm_kernel.backward(params, cache, wh, wc)
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        assert_gradients_match(name, numerical_gradient(loss, params[name]), grads.params[name])


def test_backward_does_not_modify_its_inputs():
    rng = np.random.default_rng(21)
    params = lstm_params(rng)
    x = rng.standard_normal((T, B, D))
    _, cache = lstm_kernel.forward(params, x)
    before = [a.copy() for a in cache if isinstance(a, np.ndarray)]
    dh_out = rng.standard_normal((T, B, H))
    dh_copy = dh_out.copy()
    lstm_kernel.backward(params, cache, dh_out)
    lstm_kernel.backward(params, cache, dh_out)
    np.testing.assert_array_equal(dh_out, dh_copy)
    for a, b in zip([a for a in cache if isinstance(a, np.ndarray)], before):
        np.testing.assert_array_equal(a, b)


def test_float32_agrees_with_float64():
    assert_float32_agrees_with_float64(models.ModelSpec(kind="lstm", hidden=16), seed=22)


@pytest.mark.parametrize("batch,steps", [(1, 1), (1, 3), (3, 1)])
def test_gradients_for_one_step_and_one_sequence(batch, steps):
    rng = np.random.default_rng(23)
    params = lstm_params(rng)
    x = rng.standard_normal((batch, steps, D))
    y = rng.integers(0, 3, size=(batch, 1))
    check_parameter_gradients(params, x, y, (-1,), "cross_entropy", LSTM_SPEC)


def test_float32_gradient_that_vanishes_into_subnormals_is_flushed_and_still_agrees():
    """Over a long sequence the gradient from the last step decays through float32's subnormal
    range: backward flushes those entries to zero (for speed) and the rest still agrees with
    float64."""
    rng = np.random.default_rng(24)
    steps, hidden = 300, 6
    p64 = {"weight_ih": rng.standard_normal((4 * hidden, D)), "weight_hh": 0.3 * rng.standard_normal((4 * hidden, hidden)),
           "bias_ih": np.full(4 * hidden, -1.0), "bias_hh": np.zeros(4 * hidden)}  # forget gate ~0.27: fast decay
    x = rng.standard_normal((steps, B, D))
    dh_out = np.zeros((steps, B, hidden))
    dh_out[-1] = rng.standard_normal((B, hidden))
    assert_float32_flushes_a_vanished_gradient(lstm_kernel, p64, x, dh_out)
