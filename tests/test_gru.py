"""The GRU (lstm_cli/cells/gru.py): the equations, and exact BPTT gradients by centred differences."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import B, D, H, T, assert_float32_flushes_a_vanished_gradient, assert_gradients_match, numerical_gradient

from lstm_cli.cells import gru

NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def gru_params(rng, scale=2.0):
    """PyTorch's init U(-1/sqrt(H), 1/sqrt(H)), times ``scale`` so the gates leave their linear region."""
    bound = scale / np.sqrt(H)
    shapes = {"weight_ih": (3 * H, D), "weight_hh": (3 * H, H), "bias_ih": (3 * H,), "bias_hh": (3 * H,)}
    return {name: rng.uniform(-bound, bound, size=shape) for name, shape in shapes.items()}


def test_forward_matches_the_equations():
    rng = np.random.default_rng(31)
    params = gru_params(rng)
    x = rng.standard_normal((B, 6, D))
    h0 = rng.standard_normal((B, H))
    h, cache = gru.forward(params, np.ascontiguousarray(x.transpose(1, 0, 2)), h0=h0)
    np.testing.assert_allclose(h.transpose(1, 0, 2), gru.reference_forward(params, x, h0)[0],
                               rtol=1e-13, atol=1e-15)
    np.testing.assert_array_equal(cache.states[0], h0)
    assert cache.gate("z").shape == (6, B, H)


def linear_loss_case(seed, steps=T, batch=B):
    """x, h0 and weights w (T, B, H) of the loss L = sum_t w_t . h_t: a gradient arrives at every step."""
    rng = np.random.default_rng(seed)
    params = gru_params(rng)
    x = rng.standard_normal((steps, batch, D))
    h0 = rng.standard_normal((batch, H))
    w = rng.standard_normal((steps, batch, H))
    return params, x, h0, w


@pytest.mark.parametrize("steps,batch", [(T, B), (1, 1), (1, 3), (3, 1)])
def test_parameter_gradients(steps, batch):
    params, x, h0, w = linear_loss_case(32, steps, batch)

    def loss():
        h, _ = gru.forward(params, x, h0=h0)
        return float((h * w).sum())

    _, cache = gru.forward(params, x, h0=h0)
    grads = gru.backward(params, cache, w)
    assert set(grads.params) == set(NAMES)
    for name in NAMES:
        assert grads.params[name].shape == params[name].shape, name
        assert_gradients_match(name, numerical_gradient(loss, params[name]), grads.params[name])


@pytest.mark.parametrize("answers", ["every step", "last step", "steps 0 and 2"])
def test_dh_is_the_total_derivative_of_the_loss(answers):
    """Backward's dh[t] against centred differences of L w.r.t. h_t, the steps before t held fixed:
    the steps after t are rerun from h_t as their initial state."""
    params, x, h0, w = linear_loss_case(33)
    mask = {"every step": [1, 1, 1, 1], "last step": [0, 0, 0, 1], "steps 0 and 2": [1, 0, 1, 0]}[answers]
    w = w * np.array(mask, dtype=float)[:, None, None]
    h, cache = gru.forward(params, x, h0=h0)
    grads = gru.backward(params, cache, w)
    assert grads.dh.shape == (T, B, H)
    for t in range(T):
        h_t = h[t].copy()

        def loss_of_h_t():
            after, _ = gru.forward(params, x[t + 1:], h0=h_t)
            return float((h_t * w[t]).sum() + (after * w[t + 1:]).sum())

        assert_gradients_match(f"dh[{t}]", numerical_gradient(loss_of_h_t, h_t), grads.dh[t])


def test_dpre_is_the_per_step_share_of_the_recurrent_weight_gradient():
    params, x, h0, w = linear_loss_case(34)
    _, cache = gru.forward(params, x, h0=h0)
    grads = gru.backward(params, cache, w)
    shares = np.einsum("tbg,tbh->gh", grads.dpre, cache.states[:-1])
    np.testing.assert_allclose(shares, grads.params["weight_hh"], rtol=1e-12, atol=1e-14)


def test_backward_does_not_modify_its_inputs():
    params, x, h0, w = linear_loss_case(35)
    _, cache = gru.forward(params, x, h0=h0)
    before = [a.copy() for a in cache]
    w_copy = w.copy()
    first = gru.backward(params, cache, w)
    second = gru.backward(params, cache, w)
    np.testing.assert_array_equal(w, w_copy)
    for a, b in zip(cache, before):
        np.testing.assert_array_equal(a, b)
    for name in NAMES:
        np.testing.assert_array_equal(first.params[name], second.params[name])


def test_float32_stays_float32_and_agrees_with_float64():
    params, x, h0, w = linear_loss_case(36, steps=30, batch=8)
    p32 = {k: v.astype(np.float32) for k, v in params.items()}
    h64, c64 = gru.forward(params, x, h0=h0)
    h32, c32 = gru.forward(p32, x, h0=h0.astype(np.float32))
    g64, g32 = gru.backward(params, c64, w), gru.backward(p32, c32, w)
    assert h32.dtype == g32.dh.dtype == np.float32
    assert all(g.dtype == np.float32 for g in g32.params.values())
    np.testing.assert_allclose(h32, h64, rtol=0, atol=1e-5)
    for name in NAMES:
        scale = np.abs(g64.params[name]).max()
        np.testing.assert_allclose(g32.params[name], g64.params[name], rtol=0, atol=1e-4 * scale, err_msg=name)
    np.testing.assert_allclose(g32.dh, g64.dh, rtol=0, atol=1e-4 * np.abs(g64.dh).max())


def test_float32_gradient_that_vanishes_into_subnormals_is_flushed_and_still_agrees():
    """Over a long sequence the gradient from the last step decays through float32's subnormal
    range: backward flushes those entries (dh and the gates' share, both carried back) to zero
    for speed, and the rest agrees with float64."""
    rng = np.random.default_rng(15)
    steps, hidden = 300, 6
    bias = np.zeros(3 * hidden)
    bias[hidden:2 * hidden] = -4.0  # z near 0.02: the direct path h_t = ... + z h_{t-1} closes
    p64 = {"weight_ih": rng.standard_normal((3 * hidden, D)), "weight_hh": 0.2 * rng.standard_normal((3 * hidden, hidden)),
           "bias_ih": bias, "bias_hh": np.zeros(3 * hidden)}
    x = rng.standard_normal((steps, B, D))
    dh_out = np.zeros((steps, B, hidden))
    dh_out[-1] = rng.standard_normal((B, hidden))
    assert_float32_flushes_a_vanished_gradient(gru, p64, x, dh_out)
    p32 = {name: value.astype(np.float32) for name, value in p64.items()}
    dh = gru.backward(p32, gru.forward(p32, x.astype(np.float32))[1], dh_out.astype(np.float32)).dh
    tiny = np.finfo(np.float32).tiny
    assert ((dh != 0) & (np.abs(dh) < tiny)).sum() == 0 and (dh[:steps // 2] == 0).all()


# ---- through models (the spec, the head, the task's answer steps) ----

@pytest.mark.parametrize("answer_steps", [(-1,), (1, -1)])
def test_model_parameter_gradients(answer_steps):
    from conftest import check_parameter_gradients

    from lstm_cli import models

    spec = models.parse_model("gru", hidden=H)
    rng = np.random.default_rng(37)
    params = {k: v * 2.0 if "weight" in k else v for k, v in models.init_params(spec, D, 3, rng).items()}
    x = rng.standard_normal((B, T, D))
    y = rng.integers(0, 3, size=(B, len(answer_steps)))
    check_parameter_gradients(params, x, y, answer_steps, "cross_entropy", spec=spec)


def test_model_init_has_pytorch_shapes_and_no_cell():
    from lstm_cli import losses, models

    spec = models.parse_model("gru", hidden=H)
    params = models.init_params(spec, D, 3, np.random.default_rng(38))
    assert {k: v.shape for k, v in params.items()} == models.param_shapes(spec, D, 3) == {
        "weight_ih": (3 * H, D), "weight_hh": (3 * H, H), "bias_ih": (3 * H,), "bias_hh": (3 * H,),
        "head.weight": (3, H), "head.bias": (3,)}
    x = np.random.default_rng(39).standard_normal((B, T, D))
    out, cache = models.forward(params, x, spec=spec)
    _, dout = losses.loss_and_grad("cross_entropy", out, np.zeros((B, 1), dtype=int))
    grads = models.backward(params, cache, dout)
    assert grads.dc is None and grads.dh.shape == (B, T, H) and grads.dpre.shape == (B, T, 3 * H)


def test_dh_splits_exactly_into_the_direct_path_along_z_and_the_rest_through_n():
    """dL/dh_t = direct_t + rest_t (cells/gru.py): the direct path, z_{t+1} * direct_{t+1} + head_t, and the
    rest computed on its own by its recursion, rest_t = z_{t+1} * rest_{t+1} + W_hh^T dgh_{t+1}; the two
    add up to the backward's total to rounding, and with one answer step the direct path is dh_T * prod z."""
    rng = np.random.default_rng(41)
    params = gru_params(rng)
    steps = 9
    x = rng.standard_normal((steps, B, D))
    dh_out = np.zeros((steps, B, H))
    dh_out[-1] = rng.standard_normal((B, H))  # one answer step, at the end
    _, cache = gru.forward(params, x)
    grads = gru.backward(params, cache, dh_out)
    z = cache.gate("z")
    direct = gru.direct_path(cache, dh_out)
    rest = np.zeros_like(direct)
    for t in range(steps - 2, -1, -1):
        rest[t] = z[t + 1] * rest[t + 1] + grads.dpre[t + 1] @ params["weight_hh"]  # through n_{t+1} and the gates
    np.testing.assert_allclose(direct + rest, grads.dh, rtol=1e-12, atol=1e-15)
    for t in range(steps):
        np.testing.assert_allclose(direct[t], dh_out[-1] * np.prod(z[t + 1:], axis=0), rtol=1e-13)
    assert np.abs(rest).max() > 1e-3 * np.abs(direct).max()  # both parts matter in this case


def test_the_probe_reports_the_split_and_the_explanation_names_the_larger_part():
    from lstm_cli import explain, models, probes, tasks

    remember = tasks.get_task("remember")
    for gap, seed in ((3, 0), (20, 1), (40, 2)):
        profile = probes.probe_at_init(models.parse_model("gru", hidden=6), remember, gap, 8, seed)
        s = profile.summary
        assert s["belt_factor"] == "z" and s["belt_gate"] == "update gate"
        text = " ".join(explain.sentences(profile))
        assert text.startswith(f"{profile.label}: of h's gradient") and profile.label.startswith("gru")
        larger = "the direct path carries it" if s["belt_rel"] >= s["gates_rel"] else \
            "the paths through n_t and the gates carry it"
        assert larger in text
        assert f"brings {explain.sci(s['belt_rel'])}" in text and f"and the gates {explain.sci(s['gates_rel'])}" in text
