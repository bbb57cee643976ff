"""Model specs, parsing, labels, initialisers and the parameter layout."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lstm_cli import models
from lstm_cli.errors import BadInput

D, K = 3, 4


def init(text, seed=0, **defaults):
    spec = models.parse_model(text, **defaults)
    return spec, models.init_params(spec, D, K, np.random.default_rng(seed))


# --- parse_model and ModelSpec ---------------------------------------------------------

def test_parse_model_settings_and_defaults():
    spec = models.parse_model("lstm:forget_bias=0, hidden=16", hidden=64, dtype="float32")
    assert (spec.kind, spec.hidden, spec.forget_bias, spec.dtype) == ("lstm", 16, 0.0, "float32")
    spec = models.parse_model(" rnn:init=orthogonal,recurrent-scale=3,activation=relu ")
    assert (spec.kind, spec.init, spec.recurrent_scale, spec.activation) == ("rnn", "orthogonal", 3.0, "relu")
    # command-line defaults that do not apply to a kind are dropped, not errors
    assert models.parse_model("rnn", forget_bias=1.0, chrono=None).kind == "rnn"
    assert models.parse_model("lstm", activation="tanh").kind == "lstm"


@pytest.mark.parametrize("text,match", [
    ("transformer", "model.kind: unknown value 'transformer'; choose one of: rnn, lstm, gru"),
    ("", "model.kind: unknown value"),
    ("lstm:forget_bias", "bad model setting 'forget_bias' in 'lstm:forget_bias': use key=value"),
    ("lstm:colour=red", "unknown model setting 'colour' in 'lstm:colour=red'; known: hidden"),
    ("lstm:hidden=3.5", "model.hidden: must be an integer, got 3.5"),
    ("lstm:hidden=0", "model.hidden: must be >= 1, got 0"),
    ("lstm:forget_bias=abc", "model.forget_bias: must be a number, got the string 'abc'"),
    ("lstm:forget_bias=inf", "model.forget_bias: must be a finite number, got inf"),
    ("rnn:recurrent_scale=nan", "model.recurrent_scale: must be a finite number, got nan"),
    ("lstm:chrono=2", "chrono"),
    ("lstm:dtype=float16", "model.dtype: unknown value 'float16'"),
    ("lstm:init=xavier", "model.init: unknown value 'xavier'"),
    ("rnn:activation=sigmoid", "model.activation: unknown value 'sigmoid'"),
    ("lstm:activation=relu", "model.activation: applies to the rnn and indrnn only, not to 'lstm:activation=relu'"),
    ("rnn:forget_bias=1", "model.forget_bias: applies to the lstm only"),
    ("rnn:chrono=10", "model.chrono: applies to the lstm only"),
])
def test_parse_model_errors_are_bad_input(text, match):
    with pytest.raises(BadInput, match=match):
        models.parse_model(text)


def test_init_auto_resolves_to_a_name():
    assert models.ModelSpec(kind="rnn").init == "uniform"
    assert models.ModelSpec(kind="rnn", recurrent_scale=3).init == "orthogonal"
    assert models.ModelSpec(kind="rnn", recurrent_scale=3, init="uniform").init == "uniform"


@pytest.mark.parametrize("text,label", [
    ("lstm", "lstm"),
    ("rnn", "rnn"),
    ("lstm:forget_bias=0", "lstm:forget_bias=0"),
    ("rnn:recurrent_scale=3", "rnn:recurrent_scale=3"),  # init auto -> orthogonal: not a difference
    ("rnn:recurrent_scale=3,init=uniform", "rnn:init=uniform,recurrent_scale=3"),
    ("rnn:activation=relu,init=identity", "rnn:init=identity,activation=relu"),
    ("lstm:chrono=50", "lstm:chrono=50"),
    ("lstm:hidden=64,dtype=float32", "lstm:hidden=64,dtype=float32"),
])
def test_labels_name_what_differs_from_the_defaults(text, label):
    assert models.parse_model(text).label() == label


def test_describe_records_the_settings_that_apply():
    assert models.parse_model("rnn").describe() == {
        "kind": "rnn", "hidden": 32, "init": "uniform", "recurrent_scale": 1.0, "dtype": "float64",
        "activation": "tanh"}
    assert models.parse_model("lstm").describe()["forget_bias"] == 3.0
    assert "forget_bias" not in models.parse_model("lstm:chrono=20").describe()


# --- init_params ---------------------------------------------------------------------------

@pytest.mark.parametrize("kind,G", [("rnn", 1), ("lstm", 4)])
def test_parameter_layout_is_pytorchs(kind, G):
    spec, params = init(f"{kind}:hidden=5")
    H = 5
    assert {name: value.shape for name, value in params.items()} == {
        "weight_ih": (G * H, D), "weight_hh": (G * H, H), "bias_ih": (G * H,), "bias_hh": (G * H,),
        "head.weight": (K, H), "head.bias": (K,)}
    assert list(params) == ["weight_ih", "weight_hh", "bias_ih", "bias_hh", "head.weight", "head.bias"]
    assert models.param_shapes(spec, D, K) == {name: value.shape for name, value in params.items()}


def test_uniform_init_is_bounded_by_one_over_sqrt_h():
    spec, params = init("rnn:hidden=16")
    bound = 1 / math.sqrt(16)
    for name, value in params.items():
        assert np.abs(value).max() <= bound, name
        assert np.abs(value).max() > 0.8 * bound, name  # really spread over the interval


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
@pytest.mark.parametrize("scale", [1.0, 0.5, 3.0])
def test_orthogonal_singular_values_equal_the_scale(kind, scale):
    spec, params = init(f"{kind}:hidden=12,init=orthogonal,recurrent_scale={scale}")
    H = 12
    for block in range(4 if kind == "lstm" else 1):
        w = params["weight_hh"][block * H:(block + 1) * H]
        np.testing.assert_allclose(np.linalg.svd(w, compute_uv=False), scale, rtol=1e-12)


def test_orthogonal_blocks_differ():
    _, params = init("lstm:hidden=6,init=orthogonal")
    w = params["weight_hh"]
    assert not np.allclose(w[:6], w[6:12])


def test_identity_init_is_the_irnn():
    spec, params = init("rnn:hidden=5,init=identity,activation=relu,recurrent_scale=0.9")
    np.testing.assert_array_equal(params["weight_hh"], 0.9 * np.eye(5))
    assert not params["bias_ih"].any() and not params["bias_hh"].any()


@pytest.mark.parametrize("forget_bias", [0.0, 1.0, 3.0])
def test_forget_bias_sits_in_bias_ih_of_the_forget_gate(forget_bias):
    _, params = init(f"lstm:hidden=5,forget_bias={forget_bias}")
    H = 5
    np.testing.assert_array_equal(params["bias_ih"][H:2 * H], forget_bias)
    np.testing.assert_array_equal(params["bias_hh"][H:2 * H], 0.0)
    # the other gates keep their uniform biases: torch adds bias_ih + bias_hh, so b_f = forget_bias
    assert np.all(params["bias_ih"][:H] != 0) and np.all(params["bias_hh"][2 * H:] != 0)


def test_chrono_biases():
    """Tallec & Ollivier 2018: b_f = log(U(1, T_max - 1)), b_i = -b_f, in bias_ih; bias_hh zero there."""
    _, params = init("lstm:hidden=200,chrono=50")
    H = 200
    b_i, b_f = params["bias_ih"][:H], params["bias_ih"][H:2 * H]
    assert np.all(b_f >= 0) and np.all(b_f <= math.log(49))
    assert b_f.max() > math.log(40) and b_f.min() < math.log(3)
    np.testing.assert_array_equal(b_i, -b_f)
    np.testing.assert_array_equal(params["bias_hh"][:2 * H], 0.0)
    # the time scale of unit j, 1 / (1 - sigmoid(b_f)) = 1 + exp(b_f), is U(2, T_max)
    time_scale = 1 + np.exp(b_f)
    assert time_scale.min() >= 2 and time_scale.max() <= 50


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dtype(dtype):
    _, params = init(f"lstm:dtype={dtype}")
    assert all(value.dtype == np.dtype(dtype) for value in params.values())


def test_float32_params_are_the_float64_ones_rounded():
    _, p64 = init("lstm:hidden=6", seed=9)
    _, p32 = init("lstm:hidden=6,dtype=float32", seed=9)
    for name in p64:
        np.testing.assert_array_equal(p32[name], p64[name].astype(np.float32))


def test_same_seed_same_params_bit_for_bit_and_a_different_seed_differs():
    for text in ("rnn", "lstm", "rnn:recurrent_scale=3", "lstm:chrono=30"):
        _, a = init(text, seed=1)
        _, b = init(text, seed=1)
        _, c = init(text, seed=2)
        for name in a:
            assert a[name].tobytes() == b[name].tobytes(), (text, name)
        assert not np.array_equal(a["weight_hh"], c["weight_hh"])


# --- forward / backward API ------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_forward_shapes_and_answer_steps(kind):
    spec, params = init(f"{kind}:hidden=5")
    x = np.random.default_rng(0).standard_normal((2, 6, D))
    out, cache = models.forward(params, x, answer_steps=(2, -1), spec=spec)
    assert out.shape == (2, 2, K)
    h = cache.h.transpose(1, 0, 2)  # (B, T, H)
    np.testing.assert_allclose(out[:, 0], h[:, 2] @ params["head.weight"].T + params["head.bias"])
    grads = models.backward(params, cache, np.ones_like(out))
    assert grads.dh.shape == (2, 6, 5)
    assert grads.dpre.shape == (2, 6, (4 if kind == "lstm" else 1) * 5)
    assert (grads.dc is None) == (kind == "rnn")


# --- the README's Python API section stays true ----------------------------------------------

def test_readme_api_example_runs_and_its_comments_are_true(capsys):
    import pathlib
    import re

    readme = (pathlib.Path(__file__).parent.parent / "README.md").read_text()
    section = readme.split("## Python API", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "README.md (api)", "exec"), namespace)
    printed = capsys.readouterr().out.splitlines()
    assert "# per-sequence loss (16,)" in code and "# (16,) (16, 22, 32) (16, 22, 32)" in code
    assert printed[0] == "(16,) (16, 22, 32) (16, 22, 32)"
    assert namespace["x"].shape == (16, 22, 9) and namespace["out"].shape == (16, 1, 4)
    assert {name: value.shape for name, value in namespace["params"].items()} == {
        "weight_ih": (128, 9), "weight_hh": (128, 32), "bias_ih": (128,), "bias_hh": (128,),
        "head.weight": (4, 32), "head.bias": (4,)}  # the layout docs/api.md describes
    verdict, relative = printed[1].split()
    assert verdict in ("stable", "vanishing", "exploding") and float(relative) > 0


FAULTS_PER_STEP = """
import resource, sys
import numpy as np
from lstm_cli import losses, models, process
reused = process.reuse_freed_memory() if sys.argv[1] == "reuse" else None
spec = models.ModelSpec(kind="lstm", hidden=32)
params = models.init_params(spec, 8, 4, np.random.default_rng(0))
x, y = np.random.default_rng(1).standard_normal((32, 100, 8)), np.zeros((32, 1), dtype=int)
def step():
    out, cache = models.forward(params, x, spec=spec)
    return models.backward(params, cache, losses.loss_and_grad("cross_entropy", out, y)[1])
for _ in range(3):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    step()
print(reused, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 5)
"""


def test_reuse_freed_memory_removes_the_page_faults_of_every_step():
    import subprocess
    import sys

    resource = pytest.importorskip("resource")  # POSIX only
    del resource

    def faults(mode):
        run = subprocess.run([sys.executable, "-c", FAULTS_PER_STEP, mode], capture_output=True, text=True,
                             check=True)
        reused, per_step = run.stdout.split()
        return reused, float(per_step)

    reused, with_reuse = faults("reuse")
    _, default = faults("default")
    if reused == "False":  # not glibc: the call must change nothing
        assert with_reuse == pytest.approx(default, rel=0.5)
    else:
        assert reused == "True"
        assert with_reuse < max(10.0, 0.01 * default), (default, with_reuse)  # default: ~3000 here


# ---- inner_values: what inspect reads, against the plain gate-by-gate reference ----

def test_inner_values_are_the_reference_gates_and_states():
    from lstm_cli.cells.lstm_reference import reference_forward

    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 6, 4))
    spec = models.ModelSpec(kind="lstm", hidden=5)
    params = models.init_params(spec, 4, 2, rng)
    _, cache = models.forward(params, x, spec=spec)
    values = models.inner_values(params, cache)
    h, c, (_, _, gates) = reference_forward(params, x)
    assert set(values) == {"i", "f", "o", "c", "h"}
    for k, name in ((0, "i"), (1, "f"), (3, "o")):
        np.testing.assert_allclose(values[name], np.stack([g[k] for g in gates], axis=1), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(values["c"], c, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(values["h"], h, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_inner_values_of_the_rnn_are_its_pre_activation_and_slope(activation):
    from lstm_cli.cells.rnn import reference_forward

    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 5, 3))
    spec = models.ModelSpec(kind="rnn", hidden=4, activation=activation)
    params = models.init_params(spec, 3, 2, rng)
    _, cache = models.forward(params, x, spec=spec)
    values = models.inner_values(params, cache)
    h, _ = reference_forward(params, x, activation=activation)
    np.testing.assert_allclose(values["h"], h, rtol=1e-12, atol=1e-14)
    act = np.tanh if activation == "tanh" else (lambda a: np.maximum(a, 0.0))
    np.testing.assert_allclose(act(values["pre"]), h, rtol=1e-12, atol=1e-14)
    slope = 1.0 - h ** 2 if activation == "tanh" else (values["pre"] > 0).astype(float)
    np.testing.assert_allclose(values["slope"], slope, rtol=1e-12, atol=1e-14)


def test_inner_values_of_the_gru_and_the_variants():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 5, 3))
    gru = models.ModelSpec(kind="gru", hidden=4)
    params = models.init_params(gru, 3, 2, rng)
    _, cache = models.forward(params, x, spec=gru)
    values = models.inner_values(params, cache)
    assert set(values) == {"z", "r", "h"}
    h = values["h"]
    # h_t = (1 - z) n + z h_{t-1}: z is the share of the previous output kept, so h lies between them
    assert np.all((values["z"] > 0) & (values["z"] < 1)) and h.shape == (2, 5, 4)
    coupled = models.ModelSpec(kind="lstm", hidden=4, coupled=True)
    params = models.init_params(coupled, 3, 2, rng)
    values = models.inner_values(params, models.forward(params, x, spec=coupled)[1])
    np.testing.assert_allclose(values["i"], 1.0 - values["f"], rtol=1e-12)
    no_forget = models.ModelSpec(kind="lstm", hidden=4, forget_gate=False)
    params = models.init_params(no_forget, 3, 2, rng)
    assert "f" not in models.inner_values(params, models.forward(params, x, spec=no_forget)[1])
