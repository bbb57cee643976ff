"""The LSTM's variants (lstm_cli/cells/lstm_kernel.py's Variant): peephole, coupled gates, no forget gate.

The kernel is checked against the variants' equations written out plainly, and
its backward against centred differences: every parameter, and the per-step
total dL/dh_t and dL/dc_t.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import B, D, H, T, assert_gradients_match, numerical_gradient

from lstm_cli.cells import lstm_kernel
from lstm_cli.cells.lstm_reference import reference_step, sigmoid
from lstm_cli.errors import BadInput
from lstm_cli.cells.lstm_kernel import Variant

VARIANTS = {
    "peephole": Variant(peephole=True),
    "coupled": Variant(coupled=True),
    "no forget gate": Variant(forget_gate=False),
    "peephole, coupled": Variant(peephole=True, coupled=True),
    "peephole, no forget gate": Variant(peephole=True, forget_gate=False),
}


def variant_params(rng, variant, scale=2.0):
    """PyTorch's init U(-1/sqrt(H), 1/sqrt(H)) times ``scale``, rows for the variant's own gates."""
    G, bound = len(variant.gates), scale / np.sqrt(H)
    shapes = {"weight_ih": (G * H, D), "weight_hh": (G * H, H), "bias_ih": (G * H,), "bias_hh": (G * H,)}
    if variant.peephole:
        shapes["weight_ch"] = (len(variant.peephole_gates) * H,)
    return {name: rng.uniform(-bound, bound, size=shape) for name, shape in shapes.items()}


def reference_forward(params, variant, x, h0, c0):
    """h, c (T, B, H) of the variant, time-major x."""
    h, c, hs, cs = h0, c0, [], []
    for x_t in x:
        h, c, _ = reference_step(params, variant, x_t, h, c)
        hs.append(h)
        cs.append(c)
    return np.stack(hs), np.stack(cs)


def case(variant, seed, steps=T, batch=B):
    """params, x, h0, c0 and the weights of the loss L = sum_t (wh_t . h_t + wc_t . c_t)."""
    rng = np.random.default_rng(seed)
    params = variant_params(rng, variant)
    x = rng.standard_normal((steps, batch, D))
    h0, c0 = rng.standard_normal((batch, H)), rng.standard_normal((batch, H))
    wh, wc = rng.standard_normal((steps, batch, H)), rng.standard_normal((steps, batch, H))
    return params, x, h0, c0, wh, wc


@pytest.mark.parametrize("name", VARIANTS)
def test_forward_matches_the_equations(name):
    variant = VARIANTS[name]
    params, x, h0, c0, _, _ = case(variant, 51, steps=6)
    h, cache = lstm_kernel.forward(params, x, h0=h0, c0=c0, variant=variant)
    h_ref, c_ref = reference_forward(params, variant, x, h0, c0)
    np.testing.assert_allclose(h, h_ref, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(cache.cells[1:], c_ref, rtol=1e-13, atol=1e-15)


def test_variants_differ_from_the_default_lstm():
    """Each flag changes the numbers (a flag that was silently ignored would not)."""
    rng = np.random.default_rng(52)
    default = variant_params(rng, Variant())
    x = rng.standard_normal((T, B, D))
    h_default, _ = lstm_kernel.forward(default, x)
    for name, variant in VARIANTS.items():
        h, _ = lstm_kernel.forward(variant_params(np.random.default_rng(52), variant), x, variant=variant)
        assert not np.allclose(h, h_default), name


def test_the_forget_gate_free_cell_carries_the_cell_exactly():
    """c_t = c_{t-1} + i_t g_t: the forget gate is exactly 1 at every step, and with the input gate
    shut (bias -50) the cell keeps c_0 bit for bit."""
    variant = Variant(forget_gate=False)
    params, x, h0, c0, _, _ = case(variant, 53, steps=20)
    _, cache = lstm_kernel.forward(params, x, h0=h0, c0=c0, variant=variant)
    assert np.all(cache.gate("f") == 1.0)
    params["bias_ih"][:H] = -50.0  # i = sigmoid(-50 + ...) ~ 2e-22
    _, cache = lstm_kernel.forward(params, x, h0=h0, c0=c0, variant=variant)
    np.testing.assert_allclose(cache.cells[-1], c0, rtol=0, atol=1e-18)


def test_coupled_input_gate_is_one_minus_forget():
    variant = Variant(coupled=True)
    params, x, h0, c0, _, _ = case(variant, 54)
    _, cache = lstm_kernel.forward(params, x, h0=h0, c0=c0, variant=variant)
    np.testing.assert_array_equal(cache.gate("i"), 1.0 - cache.gate("f"))


def test_coupled_without_forget_gate_is_refused():
    with pytest.raises(BadInput, match="forget gate"):
        lstm_kernel.forward(variant_params(np.random.default_rng(0), Variant()), np.zeros((2, 1, D)),
                     variant=Variant(coupled=True, forget_gate=False))


def test_parameter_layout():
    assert Variant().gates == "ifgo" and Variant().peephole_gates == ""
    assert Variant(coupled=True).gates == "fgo"
    assert Variant(forget_gate=False).gates == "igo"
    assert Variant(peephole=True).peephole_gates == "ifo"
    assert Variant(peephole=True, coupled=True).peephole_gates == "fo"


@pytest.mark.parametrize("name", VARIANTS)
@pytest.mark.parametrize("steps,batch", [(T, B), (1, 1)])
def test_parameter_gradients(name, steps, batch):
    variant = VARIANTS[name]
    params, x, h0, c0, wh, wc = case(variant, 55, steps, batch)

    def loss():
        h, cache = lstm_kernel.forward(params, x, h0=h0, c0=c0, variant=variant)
        return float((h * wh).sum() + (cache.cells[1:] * wc).sum())

    _, cache = lstm_kernel.forward(params, x, h0=h0, c0=c0, variant=variant)
    grads = lstm_kernel.backward(params, cache, wh, wc)
    assert set(grads.params) == set(params)
    for key, value in params.items():
        assert grads.params[key].shape == value.shape, key
        assert_gradients_match(f"{name}: {key}", numerical_gradient(loss, value), grads.params[key])
    assert grads.dpre.shape == (steps, batch, len(variant.gates) * H)


@pytest.mark.parametrize("name", VARIANTS)
@pytest.mark.parametrize("answers", ["every step", "last step"])
def test_dh_and_dc_are_the_total_derivatives_of_the_loss(name, answers):
    """Backward's dh[t], dc[t] against centred differences of L w.r.t. h_t and c_t, the steps before t
    held fixed and the steps after t rerun from (h_t, c_t). Moving c_t also moves h_t = o_t tanh(c_t),
    and with a peephole o_t = sigmoid(z_o + p_o c_t) as well: dL/dc_t is the total derivative."""
    variant = VARIANTS[name]
    params, x, h0, c0, wh, wc = case(variant, 56)
    if answers == "last step":
        wh[:-1] = 0.0
        wc[:] = 0.0
    h, cache = lstm_kernel.forward(params, x, h0=h0, c0=c0, variant=variant)
    grads = lstm_kernel.backward(params, cache, wh, wc)
    p_o = lstm_kernel.peepholes(params, variant, H)["o"]
    for t in range(T):
        h_t, c_t = h[t].copy(), cache.cells[t + 1].copy()

        def rest(h_var, c_var):
            after, after_cache = lstm_kernel.forward(params, x[t + 1:], h0=h_var, c0=c_var, variant=variant)
            return float((h_var * wh[t]).sum() + (c_var * wc[t]).sum() + (after * wh[t + 1:]).sum()
                         + (after_cache.cells[1:] * wc[t + 1:]).sum())

        assert_gradients_match(f"{name}: dh[{t}]", numerical_gradient(lambda: rest(h_t, c_t), h_t), grads.dh[t])
        h_prev, c_prev = (h0, c0) if t == 0 else (h[t - 1], cache.cells[t])
        z_o = reference_step(params, variant, x[t], h_prev, c_prev)[2]
        c_var = c_t.copy()

        def loss_of_c():
            return rest(sigmoid(z_o + p_o * c_var) * np.tanh(c_var), c_var)

        assert_gradients_match(f"{name}: dc[{t}]", numerical_gradient(loss_of_c, c_var), grads.dc[t])


# ---- through models: the model text, init, the head ----

TEXTS = ["lstm:peephole=true", "lstm:coupled=true", "lstm:forget_gate=false",
         "lstm:peephole=true,forget_gate=false"]


@pytest.mark.parametrize("text", TEXTS)
def test_model_parameter_gradients(text):
    from conftest import check_parameter_gradients

    from lstm_cli import models

    spec = models.parse_model(text, hidden=H)
    rng = np.random.default_rng(57)
    # larger weights, smaller biases: with the forget bias of 3 a coupled input gate is ~0.05 and
    # dL/dW_hh ~1e-4, where the differences' rounding (~1e-13) is already 1e-7 of it
    params = {k: v * 2.0 if "weight" in k else v * 0.3 for k, v in models.init_params(spec, D, 3, rng).items()}
    x = rng.standard_normal((B, T, D))
    y = rng.integers(0, 3, size=(B, 2))
    check_parameter_gradients(params, x, y, (1, -1), "cross_entropy", spec=spec)


@pytest.mark.parametrize("text", TEXTS)
def test_model_text_round_trips_and_shapes(text):
    from lstm_cli import models

    spec = models.parse_model(text)
    assert spec.label() == text and models.parse_model(spec.label()) == spec
    params = models.init_params(spec, D, 3, np.random.default_rng(58))
    assert {k: v.shape for k, v in params.items()} == models.param_shapes(spec, D, 3)
    H32 = spec.hidden
    G = {"lstm:peephole=true": 4}.get(text, 3)
    assert params["weight_ih"].shape == (G * H32, D) and params["bias_hh"].shape == (G * H32,)
    assert ("weight_ch" in params) == ("peephole" in text)


def test_init_biases_of_the_variants():
    """The forget bias goes to the forget gate's own rows; chrono's negative input bias to the input
    gate's; a peephole LSTM draws the plain LSTM's weights, then weight_ch."""
    from lstm_cli import models

    def init(text, **kw):
        return models.init_params(models.parse_model(text, hidden=H, **kw), D, 3, np.random.default_rng(59))

    coupled = init("lstm:coupled=true")  # rows f, g, o
    assert np.all(coupled["bias_ih"][:H] == 3.0) and np.all(coupled["bias_hh"][:H] == 0.0)
    free = init("lstm:forget_gate=false", chrono=10.0)  # rows i, g, o
    assert np.all(free["bias_ih"][:H] < 0) and np.all(free["bias_ih"][:H] > -np.log(9) - 1e-12)
    plain, peephole = init("lstm"), init("lstm:peephole=true")
    for name in plain:
        np.testing.assert_array_equal(peephole[name], plain[name])
    assert peephole["weight_ch"].shape == (3 * H,) and np.abs(peephole["weight_ch"]).max() <= 1 / np.sqrt(H)


@pytest.mark.parametrize("text,words", [
    ("lstm:coupled=true,forget_gate=false", "needs the forget gate"),
    ("lstm:forget_gate=false,forget_bias=1", "no forget bias"),
    ("gru:peephole=true", "model.peephole: applies to the lstm only"),
    ("rnn:forget_gate=false", "model.forget_gate: applies to the lstm only"),
    ("gru:forget_bias=1", "model.forget_bias: applies to the lstm only"),
    ("lstm:peephole=maybe", "model.peephole: must be true or false"),
])
def test_impossible_models_are_bad_input(text, words):
    from lstm_cli import models

    with pytest.raises(BadInput, match=words):
        models.parse_model(text)
