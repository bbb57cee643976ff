"""The IndRNN (lstm_cli/cells/indrnn.py): its exact per-unit split, its init and its refusals.

Gradients, torch (none), reference, memory, explanation, checkpoints and the commands
come from tests/test_cells.py, which runs for every registered cell.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import B, D, H

from lstm_cli import models
from lstm_cli.cells import indrnn
from lstm_cli.errors import BadInput


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_one_step_back_is_u_times_act_prime_unit_by_unit(activation):
    """dh_{t-1} = u * act'(a_t) * dh_t exactly, unit by unit, where the head adds nothing at t-1."""
    rng = np.random.default_rng(3)
    params = {"weight_ih": rng.standard_normal((H, D)), "weight_hh": rng.uniform(-1.2, 1.2, H),
              "bias_ih": rng.standard_normal(H), "bias_hh": np.zeros(H)}
    x = rng.standard_normal((12, B, D))
    dh_out = np.zeros((12, B, H))
    dh_out[-1] = rng.standard_normal((B, H))
    _, cache = indrnn.forward(params, x, activation=activation)
    grads = indrnn.backward(params, cache, dh_out)
    h = cache.h[1:]
    slope = 1.0 - h * h if activation == "tanh" else (h > 0).astype(float)
    for t in range(11, 0, -1):
        np.testing.assert_array_equal(grads.dh[t - 1], params["weight_hh"] * (slope[t] * grads.dh[t]))
    # so each unit's log decay over k steps is its act' terms plus k log|u_j|, exactly
    alive = np.all(slope[1:] > 0, axis=0) & (grads.dh[-1] != 0)
    with np.errstate(divide="ignore"):
        by_parts = np.log(np.abs(params["weight_hh"])) * 11 + np.log(slope[1:]).sum(axis=0)
        total = np.log(np.abs(grads.dh[0])) - np.log(np.abs(grads.dh[-1]))
    np.testing.assert_allclose(total[alive], by_parts[alive], rtol=1e-12, atol=1e-12)


def test_init_bounds_u_by_the_recurrent_scale():
    for text, low, high in (("indrnn", 0.0, 1.0), ("indrnn:recurrent_scale=0.5", 0.0, 0.5)):
        spec = models.parse_model(text, hidden=400)
        u = models.init_params(spec, D, 3, np.random.default_rng(0))["weight_hh"]
        assert u.shape == (400,) and low <= u.min() and u.max() <= high and u.max() > 0.9 * high
        assert spec.init == "uniform"
    spec = models.parse_model("indrnn:init=identity,recurrent_scale=0.99", hidden=4)
    params = models.init_params(spec, D, 3, np.random.default_rng(0))
    assert np.all(params["weight_hh"] == 0.99) and not params["bias_ih"].any() and not params["bias_hh"].any()


def test_orthogonal_init_is_refused_in_words():
    with pytest.raises(BadInput, match="orthogonal does not apply to the indrnn"):
        models.parse_model("indrnn:init=orthogonal")


def test_activation_applies_and_lstm_settings_do_not():
    assert models.parse_model("indrnn:activation=relu").activation == "relu"
    with pytest.raises(BadInput, match="model.forget_bias: applies to the lstm only"):
        models.parse_model("indrnn:forget_bias=1")
