"""Gradient probes: the classic results at initialisation, and every statistic checked by hand."""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys

import numpy as np
import pytest

from lstm_cli import losses, models, probes, tasks
from lstm_cli.seeds import stream

REMEMBER = tasks.get_task("remember")
GAP, HIDDEN, BATCH = 50, 32, 32
SEEDS = (0, 1, 2)


def at_init(text, seed):
    spec = models.parse_model(text, hidden=HIDDEN, dtype="float64")
    return probes.probe_at_init(spec, REMEMBER, GAP, BATCH, seed)


# --- issue 2, acceptance 4: vanishing and exploding at initialisation, gap 50 -------------

@pytest.mark.parametrize("seed", SEEDS)
def test_tanh_rnn_gradient_vanishes_over_50_steps(seed):
    profile = at_init("rnn", seed)
    assert profile.model["init"] == "uniform"
    assert profile.dh.rel[GAP] < 1e-6
    assert profile.summary["verdict"] == "vanishing"


@pytest.mark.parametrize("seed", SEEDS)
def test_tanh_rnn_gradient_explodes_with_recurrent_scale_3(seed):
    profile = at_init("rnn:recurrent_scale=3", seed)
    assert profile.model["init"] == "orthogonal"  # init auto: a scale means a spectral radius
    assert profile.sigma_max == pytest.approx(3.0, rel=1e-12)
    assert profile.dh.rel[GAP] > 1e3
    assert profile.summary["verdict"] == "exploding"


@pytest.mark.parametrize("seed", SEEDS)
def test_lstm_with_closed_forget_gates_vanishes(seed):
    profile = at_init("lstm:forget_bias=0", seed)
    assert profile.dc.rel[GAP] < 1e-6
    assert profile.summary["carrier"] == "dc" and profile.summary["verdict"] == "vanishing"


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("text", ["lstm", "lstm:chrono=50"])
def test_lstm_with_open_forget_gates_keeps_the_gradient(text, seed):
    profile = at_init(text, seed)
    if text == "lstm":
        assert profile.model["forget_bias"] == models.DEFAULT_FORGET_BIAS == 3.0
    assert profile.dc.rel[GAP] > 1e-2
    assert profile.summary["verdict"] == "stable"


# --- issue 2, acceptance 5: same seed, same numbers, bit for bit ---------------------------

def fingerprint(seed: int, text: str) -> str:
    """A hash of the parameters, the data and the whole probe output for one seed."""
    spec = models.parse_model(text, hidden=8)
    digest = hashlib.sha256()
    for array in models.init_params(spec, REMEMBER.input_size, REMEMBER.output_size,
                                    stream(seed, "params")).values():
        digest.update(array.tobytes())
    for array in REMEMBER.generate(stream(seed, "train"), 4, 10):
        digest.update(array.tobytes())
    profile = probes.probe_at_init(spec, REMEMBER, 10, 4, seed)
    digest.update(json.dumps(profile.to_dict(), sort_keys=True).encode())  # repr of floats is exact
    return digest.hexdigest()


@pytest.mark.parametrize("text", ["rnn", "lstm:chrono=20"])
def test_same_seed_same_numbers_bit_for_bit(text):
    assert fingerprint(3, text) == fingerprint(3, text)
    assert fingerprint(3, text) != fingerprint(4, text)


def test_same_seed_same_numbers_in_a_fresh_process():
    import os

    tests_dir = os.path.dirname(os.path.abspath(__file__))
    code = (f"import sys; sys.path.insert(0, {tests_dir!r}); from test_probes import fingerprint; "
            "print(fingerprint(3, 'lstm:chrono=20'))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == fingerprint(3, "lstm:chrono=20")


# --- the statistics, each against an independent computation -------------------------------

def test_safe_norm_keeps_tiny_huge_and_non_finite_values():
    a = np.array([[1e-200, 1e-200],  # squares underflow to 0 in a naive norm
                  [1e200, -1e200],  # squares overflow to inf
                  [0.0, 0.0],
                  [np.inf, 1.0],
                  [-np.inf, np.nan],
                  [np.nan, 1.0],
                  [5e-324, 0.0],  # the smallest subnormal
                  [3.0, 4.0]])
    with np.errstate(all="ignore"):
        norms = probes.safe_norm(a)
    assert norms[0] == pytest.approx(math.sqrt(2) * 1e-200, rel=1e-15)
    assert norms[1] == pytest.approx(math.sqrt(2) * 1e200, rel=1e-15)
    assert norms[2] == 0.0
    assert norms[3] == np.inf
    assert math.isnan(norms[4]) and math.isnan(norms[5])
    assert norms[6] == 5e-324
    assert norms[7] == 5.0


def test_safe_norm_along_an_axis():
    a = np.random.default_rng(0).standard_normal((3, 4, 5))
    np.testing.assert_allclose(probes.safe_norm(a), np.linalg.norm(a, axis=-1), rtol=1e-14)
    np.testing.assert_allclose(probes.safe_norm(a, axis=1), np.linalg.norm(a, axis=1), rtol=1e-14)


@pytest.mark.parametrize("text", ["rnn", "lstm"])
def test_probe_dh_is_the_training_gradient_times_batch(text):
    """The probe (sum over sequences) sees dl_b/dh_t; training (the mean) sees 1/B of it."""
    spec = models.parse_model(text, hidden=6)
    params = models.init_params(spec, REMEMBER.input_size, REMEMBER.output_size, np.random.default_rng(0))
    x, y = REMEMBER.generate(np.random.default_rng(1), 5, 7)
    profile = probes.probe(spec, params, REMEMBER, x, y, 7)
    out, cache = models.forward(params, x, spec=spec)
    per_seq, dout = losses.loss_and_grad(REMEMBER.loss, out, y, reduction="mean")
    grads = models.backward(params, cache, dout)
    B = x.shape[0]
    expected = np.linalg.norm(grads.dh * B, axis=-1)  # (B, T)
    np.testing.assert_allclose(profile.dh.mean, expected.mean(axis=0)[::-1], rtol=1e-12)
    np.testing.assert_allclose(profile.dh.p50, np.median(expected, axis=0)[::-1], rtol=1e-12)
    assert np.all(profile.dh.p10 <= profile.dh.p50) and np.all(profile.dh.p50 <= profile.dh.p90)
    np.testing.assert_allclose(profile.dh.rel, profile.dh.mean / profile.dh.mean[0], rtol=1e-15)
    assert profile.loss == pytest.approx(per_seq.mean(), rel=1e-14)
    if grads.dc is not None:
        expected_c = np.linalg.norm(grads.dc * B, axis=-1)
        np.testing.assert_allclose(profile.dc.mean, expected_c.mean(axis=0)[::-1], rtol=1e-12)
    # step t's share of dL/dW_hh (L the batch mean): dpre_t^T h_{t-1}; the shares sum to dL/dW_hh
    h_prev = cache.core.states[:-1].transpose(1, 0, 2)  # (B, T, H)
    shares = np.einsum("btg,bth->tgh", grads.dpre, h_prev)  # (T, G*H, H)
    np.testing.assert_allclose(shares.sum(axis=0), grads.params["weight_hh"], rtol=1e-10, atol=1e-16)
    np.testing.assert_allclose(profile.dw, np.linalg.norm(shares, axis=(1, 2))[::-1], rtol=1e-12)
    assert profile.dw[-1] == 0.0  # h_{-1} = 0: the first step adds nothing to dL/dW_hh


def test_forget_product_on_a_hand_example():
    """Zero weights make every forget gate a constant sigmoid(b_f): 1/2 and 3/4 for two units,
    so the product over the k steps after step t is (1/2)^k and (3/4)^k."""
    H = 2
    spec = models.ModelSpec(kind="lstm", hidden=H)
    params = {name: np.zeros_like(value) for name, value in
              models.init_params(spec, REMEMBER.input_size, REMEMBER.output_size,
                                 np.random.default_rng(0)).items()}
    params["bias_ih"][H:2 * H] = [0.0, math.log(3.0)]  # sigmoid: 1/2, 3/4
    x, y = REMEMBER.generate(np.random.default_rng(0), 3, 5)
    profile = probes.probe(spec, params, REMEMBER, x, y, 5)
    k = np.arange(x.shape[1])
    np.testing.assert_allclose(profile.forget_product, (0.5 ** k + 0.75 ** k) / 2, rtol=1e-14)
    np.testing.assert_allclose(profile.forget, 0.625, rtol=1e-15)


def test_rnn_bound_sigma_and_saturation():
    spec = models.parse_model("rnn:recurrent_scale=2", hidden=5)
    params = models.init_params(spec, REMEMBER.input_size, REMEMBER.output_size, np.random.default_rng(2))
    x, y = REMEMBER.generate(np.random.default_rng(3), 4, 6)
    profile = probes.probe(spec, params, REMEMBER, x, y, 6)
    assert profile.sigma_max == pytest.approx(np.linalg.svd(params["weight_hh"], compute_uv=False)[0])
    np.testing.assert_allclose(profile.bound, profile.sigma_max ** profile.steps_back, rtol=1e-13)
    out, cache = models.forward(params, x, spec=spec)
    np.testing.assert_allclose(profile.h_abs, np.abs(cache.h).mean(axis=(1, 2))[::-1], rtol=1e-14)
    assert profile.dc is None and profile.forget is None and profile.summary["carrier"] == "dh"


# --- the summary: decay, horizon, verdict -------------------------------------------------

def profile_with_relative(rel):
    """A GradientProfile whose carrier (dh of an RNN) has the relative norms ``rel`` (steps back)."""
    rel = np.asarray(rel, dtype=np.float64)
    norms = np.tile(rel[::-1], (3, 1))  # (B, T) in time order, the same for every sequence
    steps = np.arange(rel.size)
    return probes.GradientProfile(label="x", model={}, task="remember", gap=rel.size, batch=3, loss=0.0,
                                  steps_back=steps, dh=probes.NormStats.of(norms),
                                  dw=np.ones(rel.size), dw_rel=np.ones(rel.size))


@pytest.mark.parametrize("rel,verdict,horizon", [
    (0.5 ** np.arange(20), "vanishing", 10),  # 0.5^10 ~ 9.8e-4 < 1e-3
    (2.0 ** np.arange(20), "exploding", None),
    (np.ones(20), "stable", None),
    (np.r_[1.0, np.full(19, 1e-3)], "stable", None),  # exactly 1e-3 is not below it
    (np.r_[1.0, 1e-5, np.zeros(18)], "vanishing", 1),  # underflowed zeros count as vanished
    (np.r_[1.0, 2.0, np.full(18, np.inf)], "overflow", None),
    (np.r_[1.0, 2.0, np.full(18, np.nan)], "nan", None),
])
def test_summary_verdicts(rel, verdict, horizon):
    with np.errstate(all="ignore"):
        summary = probes.summarise(profile_with_relative(rel))
    assert summary["verdict"] == verdict
    assert summary["horizon"] == horizon
    assert summary["steps_back_max"] == 19


def test_summary_decay_is_the_per_step_factor():
    summary = probes.summarise(profile_with_relative(0.8 ** np.arange(30)))
    assert summary["decay_per_step"] == pytest.approx(0.8, rel=1e-12)
    assert summary["relative_at_first_step"] == pytest.approx(0.8 ** 29, rel=1e-12)


def test_to_dict_is_plain_and_keeps_non_finite_values():
    profile = at_init("rnn:recurrent_scale=3", 0)
    d = profile.to_dict()
    assert d["summary"]["verdict"] == "exploding"
    steps = d["steps"]
    assert len(steps["steps_back"]) == REMEMBER.length(GAP)
    assert all(type(v) is float for v in steps["dh_mean"])
    assert {"dh_mean", "dh_p10", "dh_p50", "dh_p90", "dh_rel", "dw", "dw_rel", "h_abs", "bound"} <= set(steps)
    with np.errstate(all="ignore"):
        d = profile_with_relative(np.r_[1.0, np.inf, np.nan]).to_dict()
    assert math.isinf(d["steps"]["dh_rel"][1]) and math.isnan(d["steps"]["dh_rel"][2])


def test_percentiles_match_numpy_linear_method():
    rng = np.random.default_rng(3)
    for shape in [(64, 7), (1, 3), (2, 5), (33, 1)]:
        values = rng.lognormal(sigma=5.0, size=shape)
        ours = probes.percentiles(values, (10, 50, 90))
        np.testing.assert_allclose(ours, np.percentile(values, [10, 50, 90], axis=0), rtol=1e-14, atol=0)
    edge = np.array([[np.inf, np.nan, 0.0], [np.inf, 1.0, 0.0], [np.inf, 2.0, 1e-300]])
    p10, p50, p90 = probes.percentiles(edge, (10, 50, 90))
    assert p50[0] == np.inf and np.isnan(p50[1]) and p10[2] == 0.0 and p90[2] > 0



# --- why, exactly: the split of each step back into its causes -----------------------------

def split_by_hand(params, x, y, task, activation, answer_steps=(-1,)):
    """Per sequence, log10 of ||u_t|| / ||dh_t|| and ||dh_{t-1}|| / ||u_t|| (np.linalg.norm),
    summed from the earliest answer step s back to each step t; batch means, for t = s .. 0."""
    out, cache = models.forward(params, x, answer_steps=answer_steps,
                                spec=models.parse_model(f"rnn:activation={activation}", hidden=params["weight_hh"].shape[1]))
    _, dout = losses.loss_and_grad(task.loss, out, y, reduction="sum")
    grads = models.backward(params, cache, dout)
    s = min(a % x.shape[1] for a in answer_steps)
    h = cache.core.states[1:].transpose(1, 0, 2)  # (B, T, H)
    slope = 1 - h ** 2 if activation == "tanh" else (h > 0).astype(float)
    dh_norm = np.linalg.norm(grads.dh, axis=-1)  # (B, T)
    u_norm = np.linalg.norm(slope * grads.dh, axis=-1)
    activation_share = np.log10(u_norm / dh_norm)  # (B, T): step t -> t-1, at index t
    recurrent_share = np.log10(dh_norm[:, :-1] / u_norm[:, 1:])  # at index t-1
    rows = []
    for t in range(s, -1, -1):
        rows.append((activation_share[:, t + 1:s + 1].sum(axis=1).mean(),
                     recurrent_share[:, t:s].sum(axis=1).mean(),
                     np.log10(dh_norm[:, t] / dh_norm[:, s]).mean()))
    return np.array(rows).T  # (3, s + 1): activation, recurrent, total by steps back from s


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("task_name", sorted(tasks.TASKS))
def test_the_split_adds_up_and_matches_a_hand_computation(task_name, activation):
    """Acceptance: a + w = t to 1e-9 in float64, for the tanh and relu RNN on every task."""
    task = tasks.get_task(task_name)
    gap = max(task.min_gap, 6)
    spec = models.parse_model(f"rnn:activation={activation}", hidden=8)
    params = models.init_params(spec, task.input_size, task.output_size, np.random.default_rng(7))
    x, y = task.generate(np.random.default_rng(8), 3, gap)
    profile = probes.probe(spec, params, task, x, y, gap)
    # the split starts at the earliest answer step; the steps after it (several answers) are NaN
    start = x.shape[1] - 1 - min(a % x.shape[1] for a in task.answer_steps)
    a, w, t = (v[start:] for v in (profile.decades_activation, profile.decades_recurrent, profile.decades_total))
    assert np.all(np.isnan(profile.decades_total[:start]))
    assert np.all(np.isfinite(t)) and t[-1] < 0
    np.testing.assert_allclose(a + w, t, rtol=0, atol=1e-9)
    np.testing.assert_allclose(np.array([a, w, t]), split_by_hand(params, x, y, task, activation, task.answer_steps),
                               rtol=0, atol=1e-9)
    d = profile.to_dict()["summary"]["decades"]
    assert d == {"activation": a[-1], "recurrent": w[-1], "total": t[-1]}
    assert abs(d["activation"] + d["recurrent"] - d["total"]) < 1e-9


@pytest.mark.parametrize("seed", SEEDS)
def test_an_orthogonal_w_hh_loses_nothing(seed):
    """Acceptance: an orthogonal matrix preserves norms, so the recurrent share is 0."""
    profile = at_init("rnn:init=orthogonal,recurrent_scale=1", seed)
    assert profile.spectral_radius == pytest.approx(1.0, abs=1e-12)
    assert np.max(np.abs(profile.decades_recurrent)) < 1e-9
    assert profile.summary["decades"]["activation"] < -1  # tanh' < 1 loses the rest


def test_default_init_loses_most_to_w_hh_with_spectral_radius_below_sigma_max():
    profile = at_init("rnn", 0)
    w_hh = profile_params("rnn", 0)["weight_hh"]
    assert profile.spectral_radius == pytest.approx(max(abs(np.linalg.eigvals(w_hh))), rel=1e-12)
    assert profile.spectral_radius < 0.8 < 1 < profile.sigma_max
    d = profile.summary["decades"]
    assert d["recurrent"] < 5 * d["activation"] < 0  # W_hh's share is the larger loss
    assert 0.9 < profile.summary["activation_slope"] < 1


def profile_params(text, seed):
    spec = models.parse_model(text, hidden=HIDDEN, dtype="float64")
    return models.init_params(spec, REMEMBER.input_size, REMEMBER.output_size, stream(seed, "params"))


def test_split_with_several_answer_steps_starts_at_the_earliest():
    """Where the head adds gradient at the last 3 steps, the split covers the steps back
    from the earliest answer step (steps back 2) and is NaN between it and the loss step."""
    spec = models.parse_model("rnn", hidden=5)
    params = models.init_params(spec, REMEMBER.input_size, REMEMBER.output_size, np.random.default_rng(1))
    x, _ = REMEMBER.generate(np.random.default_rng(2), 3, 8)
    y = np.random.default_rng(3).integers(0, REMEMBER.output_size, size=(3, 3))
    answers = (-3, -2, -1)
    out, cache = models.forward(params, x, answer_steps=answers, spec=spec)
    _, dout = losses.loss_and_grad(REMEMBER.loss, out, y, reduction="sum")
    grads = models.backward(params, cache, dout)
    T = x.shape[1]
    a, w, t = probes.recurrent_split(grads.dh.transpose(1, 0, 2), grads.dpre.transpose(1, 0, 2), T - 3)
    assert np.all(np.isnan(np.array([a, w, t])[:, :2])) and a[2] == w[2] == t[2] == 0
    np.testing.assert_allclose(np.array([a, w, t])[:, 2:], split_by_hand(params, x, y, REMEMBER, "tanh", answers),
                               rtol=0, atol=1e-9)


def test_a_zeroed_gradient_counts_as_minus_infinity_on_the_factor_that_zeroed_it():
    """A relu RNN whose units are all off at step 2: relu' = 0 there takes everything."""
    T, B, H = 4, 1, 2
    dh = np.ones((T, B, H))
    u = np.ones((T, B, H))
    u[2] = 0.0  # act' = 0 at step 2
    dh[:2] = 0.0  # so nothing reaches steps 1 and 0
    u[:2] = 0.0
    a, w, t = probes.recurrent_split(dh, u, T - 1)
    assert a.tolist() == [0.0, 0.0, -np.inf, -np.inf]
    assert w.tolist() == [0.0, 0.0, 0.0, 0.0]
    assert t.tolist() == [0.0, 0.0, -np.inf, -np.inf]


def test_lstm_belt_is_dc_times_the_forget_product_and_gates_the_rest():
    spec = models.parse_model("lstm:forget_bias=1", hidden=5)
    params = models.init_params(spec, REMEMBER.input_size, REMEMBER.output_size, np.random.default_rng(4))
    x, y = REMEMBER.generate(np.random.default_rng(5), 3, 7)
    profile = probes.probe(spec, params, REMEMBER, x, y, 7)
    out, cache = models.forward(params, x, spec=spec)
    _, dout = losses.loss_and_grad(REMEMBER.loss, out, y, reduction="sum")
    dc = models.backward(params, cache, dout).dc  # (B, T, H)
    f = cache.core.gate("f").transpose(1, 0, 2)  # (B, T, H)
    T = x.shape[1]
    belt = np.stack([dc[:, -1] * np.prod(f[:, t + 1:], axis=1) for t in range(T)], axis=1)  # (B, T, H)
    at_loss = np.linalg.norm(dc[:, -1], axis=-1).mean()
    np.testing.assert_allclose(profile.belt_rel, np.linalg.norm(belt, axis=-1).mean(axis=0)[::-1] / at_loss,
                               rtol=1e-12)
    np.testing.assert_allclose(profile.gates_rel, np.linalg.norm(dc - belt, axis=-1).mean(axis=0)[::-1] / at_loss,
                               rtol=1e-9, atol=1e-15)
    s = profile.to_dict()["summary"]
    assert s["belt_rel"] == profile.belt_rel[-1] and s["gates_rel"] == profile.gates_rel[-1]
    assert s["belt_share"] == pytest.approx(profile.belt_rel[-1] / profile.dc.rel[-1], rel=1e-14)
    assert s["belt_factor"] == "f" and s["belt_factor_mean"] == pytest.approx(f.mean(), rel=1e-14)
    assert "decades" not in s and "decades" in at_init("rnn", 0).summary


def test_lstm_without_recurrent_weights_carries_everything_on_the_belt():
    """With W_hh = 0, h_{t-1} never reaches the gates: dl/dc_t is the direct path alone."""
    spec = models.parse_model("lstm", hidden=4)
    params = models.init_params(spec, REMEMBER.input_size, REMEMBER.output_size, np.random.default_rng(6))
    params["weight_hh"][:] = 0.0
    x, y = REMEMBER.generate(np.random.default_rng(7), 3, 9)
    profile = probes.probe(spec, params, REMEMBER, x, y, 9)
    assert np.all(profile.gates_rel == 0.0)
    np.testing.assert_allclose(profile.belt_rel, profile.dc.rel, rtol=1e-14)
    assert profile.summary["belt_share"] == pytest.approx(1.0, rel=1e-14)


def test_json_names_of_the_split():
    rnn, lstm = at_init("rnn", 0).to_dict(), at_init("lstm", 0).to_dict()
    assert set(rnn["summary"]["decades"]) == {"activation", "recurrent", "total"}
    assert rnn["spectral_radius"] < rnn["sigma_max"]
    assert {"decades_activation", "decades_recurrent", "decades_total"} <= set(rnn["steps"])
    assert {"belt_rel", "gates_rel"} <= set(lstm["summary"]) and lstm["spectral_radius"] is None
    assert {"belt", "belt_rel", "gates", "gates_rel"} <= set(lstm["steps"])
def test_copy_probe_takes_the_loss_of_all_ten_answer_steps():
    """copy answers at its last 10 steps: the probed loss is the sum of the 10 one-step losses,
    and dl/dh_t at the first answer step (9 steps back) carries all ten."""
    copy = tasks.get_task("copy")
    spec = models.parse_model("lstm", hidden=6)
    params = models.init_params(spec, copy.input_size, copy.output_size, np.random.default_rng(0))
    x, y = copy.generate(np.random.default_rng(1), 5, 4)
    profile = probes.probe(spec, params, copy, x, y, 4)
    one_step = []
    for k, step in enumerate(range(-10, 0)):
        out, _ = models.forward(params, x, answer_steps=(step,), spec=spec)
        one_step.append(losses.loss_and_grad("cross_entropy", out, y[:, [k]])[0])
    assert profile.loss == pytest.approx(np.sum(one_step, axis=0).mean(), rel=1e-13)
    assert profile.loss == pytest.approx(10 * np.log(8), rel=0.1)  # at init: near the memoryless baseline
    assert np.all(profile.dh.mean[:10] > 0)


def test_the_forget_gate_free_belt_is_exactly_one_and_the_gru_belt_is_the_product_of_z():
    """The carousel: without a forget gate every factor of the cell's direct path is 1, so the
    product back from the answer step is 1 at every step (to 1e-12; it is exact). The GRU's
    direct path multiplies by z: its product, recomputed here step by step from the gates."""
    free = models.parse_model("lstm:forget_gate=false", hidden=6)
    profile = probes.probe_at_init(free, REMEMBER, 30, 8, seed=0)
    np.testing.assert_allclose(profile.forget_product, 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(profile.forget, 1.0, rtol=0, atol=1e-12)
    gru = models.parse_model("gru", hidden=6)
    x, y = REMEMBER.generate(stream(0, "probe"), 8, 30)
    params = models.init_params(gru, REMEMBER.input_size, REMEMBER.output_size, stream(0, "params"))
    profile = probes.probe(gru, params, REMEMBER, x, y, 30)
    _, cache = models.forward(params, x, spec=gru)
    z = cache.core.gate("z")  # (T, B, H)
    T = z.shape[0]
    expected = [np.mean(np.prod(z[T - k:], axis=0)) if k else 1.0 for k in range(T)]  # prod_{s>t} z_s
    np.testing.assert_allclose(profile.forget_product, expected, rtol=1e-12)
    assert profile.dc is None and profile.bound is None and profile.summary["carrier"] == "dh"
