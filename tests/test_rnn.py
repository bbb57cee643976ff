"""The vanilla RNN (lstm_cli/cells/rnn.py through models.forward/backward): exact BPTT gradients."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import (B, D, H, T, assert_float32_agrees_with_float64,
                      assert_float32_flushes_a_vanished_gradient, assert_gradients_match,
                      check_parameter_gradients, loss_from_state, numerical_gradient)

from lstm_cli import losses, models
from lstm_cli.cells import rnn


def rnn_spec(activation, params):
    return models.ModelSpec(kind="rnn", hidden=params["weight_hh"].shape[1], activation=activation)


def rnn_params(rng, activation, K=3):
    spec = models.ModelSpec(kind="rnn", hidden=H, activation=activation)
    params = models.init_params(spec, D, K, rng)
    # larger weights than the init so every term of the chain rule matters
    for name in params:
        params[name] = params[name] * 2.0
    return params


def relu_away_from_kink(params, x, step=1e-3):
    """Centred differences across relu's kink are meaningless: demand every |pre-activation|
    be far (10x the largest perturbation, ~2 step) from 0. Checked, not assumed: change the
    seed if this fails."""
    _, cache = models.forward(params, x, spec=rnn_spec("relu", params))
    h_prev = cache.core.states[:-1]  # (T, B, H)
    x_tm = cache.core.x
    pre = x_tm @ params["weight_ih"].T + h_prev @ params["weight_hh"].T + params["bias_ih"] + params["bias_hh"]
    assert np.abs(pre).min() > 20 * step, np.abs(pre).min()


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("answer_steps", [(-1,), (1, -1)])
def test_parameter_gradients_cross_entropy(activation, answer_steps):
    rng = np.random.default_rng(7)
    params = rnn_params(rng, activation)
    x = rng.standard_normal((B, T, D))
    y = rng.integers(0, 3, size=(B, len(answer_steps)))
    if activation == "relu":
        relu_away_from_kink(params, x)
    check_parameter_gradients(params, x, y, answer_steps, "cross_entropy", rnn_spec(activation, params))


def test_parameter_gradients_mse():
    rng = np.random.default_rng(8)
    params = rnn_params(rng, "tanh", K=1)
    x = rng.standard_normal((B, T, D))
    y = rng.standard_normal((B, 1))
    check_parameter_gradients(params, x, y, (-1,), "mse", rnn_spec("tanh", params))


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("answer_steps", [(-1,), (0, 2, -1)])
def test_dh_is_the_total_derivative_of_the_loss(activation, answer_steps):
    """Backward's dh[:, t] against centred differences of L w.r.t. h_t, for every step t."""
    rng = np.random.default_rng(9)
    params = rnn_params(rng, activation)
    x = rng.standard_normal((B, T, D))
    y = rng.integers(0, 3, size=(B, len(answer_steps)))
    if activation == "relu":
        relu_away_from_kink(params, x)
    out, cache = models.forward(params, x, answer_steps=answer_steps, spec=rnn_spec(activation, params))
    _, dout = losses.loss_and_grad("cross_entropy", out, y)
    grads = models.backward(params, cache, dout)
    assert grads.dh.shape == (B, T, H) and grads.dc is None
    for t in range(T):
        h_t = cache.h[t].copy()  # (B, H)
        numerical = numerical_gradient(
            lambda: loss_from_state(params, x, y, answer_steps, "cross_entropy", t, h_t,
                                    activation=activation), h_t)
        assert_gradients_match(f"dh[:, {t}]", numerical, grads.dh[:, t])


def test_dpre_gives_the_weight_gradient_per_step():
    """Models' dpre is dL/d(pre-activation); summed over steps its outer products give dL/dW_hh."""
    rng = np.random.default_rng(10)
    params = rnn_params(rng, "tanh")
    x = rng.standard_normal((B, T, D))
    y = rng.integers(0, 3, size=(B, 1))
    out, cache = models.forward(params, x, spec=rnn_spec("tanh", params))
    grads = models.backward(params, cache, losses.loss_and_grad("cross_entropy", out, y)[1])
    h_prev = cache.core.states[:-1].transpose(1, 0, 2)  # (B, T, H)
    per_step = np.einsum("btg,bth->tgh", grads.dpre, h_prev)
    np.testing.assert_allclose(per_step.sum(axis=0), grads.params["weight_hh"], rtol=1e-12, atol=1e-15)


def test_core_backward_with_gradient_at_every_step():
    """rnn.backward on its own, with an outside gradient at every h_t (a linear loss)."""
    rng = np.random.default_rng(11)
    params = {k: v * 2 for k, v in models.init_params(models.ModelSpec(kind="rnn", hidden=H), D, 1, rng).items()}
    x = rng.standard_normal((T, B, D))
    h0 = rng.standard_normal((B, H))
    weights = rng.standard_normal((T, B, H))  # L = sum(weights * h)

    def loss():
        return float((rnn.forward(params, x, h0=h0)[0] * weights).sum())

    _, cache = rnn.forward(params, x, h0=h0)
    grads = rnn.backward(params, cache, weights)
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        assert_gradients_match(name, numerical_gradient(loss, params[name]), grads.params[name])


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_float32_agrees_with_float64(activation):
    assert_float32_agrees_with_float64(models.ModelSpec(kind="rnn", hidden=16, activation=activation), seed=12)


def test_relu_identity_rnn_carries_the_state_unchanged():
    """IRNN (Le et al. 2015): W_hh = I, zero biases, relu, zero input: h_t = h_0 (non-negative)."""
    spec = models.ModelSpec(kind="rnn", hidden=H, activation="relu", init="identity")
    params = models.init_params(spec, D, 2, np.random.default_rng(0))
    h0 = np.abs(np.random.default_rng(1).standard_normal((B, H)))
    h, _ = rnn.forward(params, np.zeros((T, B, D)), h0=h0, activation="relu")
    np.testing.assert_array_equal(h, np.broadcast_to(h0, (T, B, H)))


@pytest.mark.parametrize("batch,steps", [(1, 1), (1, 3), (3, 1)])
def test_gradients_for_one_step_and_one_sequence(batch, steps):
    rng = np.random.default_rng(13)
    params = rnn_params(rng, "tanh")
    x = rng.standard_normal((batch, steps, D))
    y = rng.integers(0, 3, size=(batch, 1))
    check_parameter_gradients(params, x, y, (-1,), "cross_entropy", rnn_spec("tanh", params))


def test_float32_gradient_that_vanishes_into_subnormals_is_flushed_and_still_agrees():
    """Over a long sequence the gradient from the last step decays through float32's subnormal
    range: backward flushes those entries to zero (for speed) and the rest agrees with float64."""
    rng = np.random.default_rng(14)
    steps, hidden = 300, 6
    p64 = {"weight_ih": rng.standard_normal((hidden, D)), "weight_hh": 0.2 * rng.standard_normal((hidden, hidden)),
           "bias_ih": np.zeros(hidden), "bias_hh": np.zeros(hidden)}  # a contracting recurrence: fast decay
    x = rng.standard_normal((steps, B, D))
    dh_out = np.zeros((steps, B, hidden))
    dh_out[-1] = rng.standard_normal((B, hidden))
    assert_float32_flushes_a_vanished_gradient(rnn, p64, x, dh_out)
