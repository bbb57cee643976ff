"""Optimisers, clipping, TrainConfig and the training loop (lstm_cli/train.py).

Optimiser steps are checked against the update rules computed by hand; the loop
is run at tiny sizes with a fixed seed known to succeed, and its outcome asserted.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from lstm_cli import config, models, seeds, train
from lstm_cli.errors import BadInput
from lstm_cli.models import ModelSpec
from lstm_cli.tasks import get_task
from lstm_cli.train import TrainConfig

# remember at gap 5 with a small LSTM: solved by seed 0 in well under 200 steps
TINY = TrainConfig(task="remember", gap=5, model=ModelSpec(hidden=8), batch=32, steps=200, lr=0.01,
                   eval_every=10, eval_size=64, probe_size=8, seed=0)


def _params():
    return {"a": np.array([1.0, -2.0]), "b": np.array([[0.5]])}


def _grads():
    return {"a": np.array([0.1, 0.4]), "b": np.array([[-2.0]])}


# ---- optimisers ----

def test_sgd_is_p_minus_lr_g_and_leaves_inputs_alone():
    params, grads = _params(), _grads()
    new, state = train.update("sgd", params, grads, train.init_state("sgd", params), lr=0.5)
    np.testing.assert_array_equal(new["a"], [0.95, -2.2])
    np.testing.assert_array_equal(new["b"], [[1.5]])
    np.testing.assert_array_equal(params["a"], [1.0, -2.0])  # pure: the input is unchanged
    assert state.step == 1


def test_momentum_accumulates_velocity():
    params, grads = _params(), _grads()
    state = train.init_state("momentum", params)
    p1, state = train.update("momentum", params, grads, state, lr=0.1, momentum=0.9)
    p2, state = train.update("momentum", p1, grads, state, lr=0.1, momentum=0.9)
    # v1 = g, v2 = 0.9 g + g = 1.9 g: p2 = p - 0.1 g - 0.19 g
    np.testing.assert_allclose(p2["a"], params["a"] - 0.29 * grads["a"], rtol=1e-15)
    np.testing.assert_allclose(state.slots["velocity"]["b"], 1.9 * grads["b"], rtol=1e-15)


def test_adam_first_step_moves_each_parameter_by_lr_times_sign():
    # after one step m_hat = g and v_hat = g^2, so the step is lr * g / (|g| + eps)
    params, grads = _params(), _grads()
    new, _ = train.update("adam", params, grads, train.init_state("adam", params), lr=0.01)
    for k in params:
        expected = params[k] - 0.01 * grads[k] / (np.abs(grads[k]) + 1e-8)
        np.testing.assert_allclose(new[k], expected, rtol=1e-14, err_msg=k)
        np.testing.assert_allclose(new[k], params[k] - 0.01 * np.sign(grads[k]), rtol=1e-6)


def test_adam_second_step_matches_the_textbook_rule():
    params, g1 = _params(), _grads()
    g2 = {k: -0.5 * v + 0.05 for k, v in g1.items()}
    state = train.init_state("adam", params)
    p1, state = train.update("adam", params, g1, state, lr=0.01)
    p2, state = train.update("adam", p1, g2, state, lr=0.01)
    b1, b2, eps = 0.9, 0.999, 1e-8
    for k in params:
        m = b1 * (1 - b1) * g1[k] + (1 - b1) * g2[k]
        v = b2 * (1 - b2) * g1[k] ** 2 + (1 - b2) * g2[k] ** 2
        expected = p1[k] - 0.01 * (m / (1 - b1 ** 2)) / (np.sqrt(v / (1 - b2 ** 2)) + eps)
        np.testing.assert_allclose(p2[k], expected, rtol=1e-12, err_msg=k)
    assert state.step == 2


def test_global_norm_and_clipping():
    grads = {"a": np.array([3.0]), "b": np.array([[4.0]])}
    assert train.global_norm(grads) == 5.0
    clipped = train.clip_by_global_norm(grads, 1.0)
    assert math.isclose(train.global_norm(clipped), 1.0)
    np.testing.assert_allclose(clipped["a"], [0.6])
    assert train.clip_by_global_norm(grads, 10.0) is grads  # below the threshold: untouched
    assert train.clip_by_global_norm(grads, 0.0) is grads  # 0 disables clipping
    assert math.isnan(train.global_norm({"a": np.array([np.nan])}))


# ---- TrainConfig ----

def test_resolved_fills_budget_and_learning_rate():
    cfg = TrainConfig(task="adding", gap=100, optimizer="sgd").resolved()
    assert cfg.steps == get_task("adding").steps == 4000
    assert cfg.lr == config.DEFAULT_LR["sgd"] == 0.1
    assert TrainConfig(steps=7, lr=0.5).resolved().steps == 7
    assert TrainConfig(task="adding", gap=100).resolved().lr == 3e-3  # Adam's step is per task
    assert TrainConfig(task="remember").resolved().lr == 1e-3


def test_to_dict_from_dict_round_trip():
    cfg = TrainConfig(task="adding", gap=20, model=ModelSpec(kind="rnn", hidden=16), lr=0.02, clip=0.0)
    d = cfg.to_dict()
    assert d["model"]["kind"] == "rnn" and d["model"]["hidden"] == 16
    assert TrainConfig.from_dict(d) == cfg
    import yaml

    assert TrainConfig.from_dict(yaml.safe_load(yaml.safe_dump(d))) == cfg


@pytest.mark.parametrize("d, key", [
    ({"gapp": 5}, "gapp"),
    ({"batch": "many"}, "batch"),
    ({"lr": -1.0}, "lr"),
    ({"clip": -0.5}, "clip"),
    ({"optimizer": "rmsprop"}, "optimizer"),
    ({"model": {"kind": "lstm", "hiden": 3}}, "hiden"),
    ({"steps": True}, "steps"),
])
def test_from_dict_names_the_bad_key(d, key):
    with pytest.raises(BadInput, match=key):
        TrainConfig.from_dict(d)


# ---- the loop ----

def _run(cfg):
    events = list(train.train(cfg))
    evaluations = [e for e in events if isinstance(e, train.Evaluation)]
    return events, evaluations


def test_tiny_run_succeeds_and_stops_early():
    events, evaluations = _run(TINY)
    assert isinstance(events[0], train.Started) and events[0].config.steps == 200
    finished = events[-1]
    assert isinstance(finished, train.Finished) and finished.success
    assert finished.step < 200  # stopped early
    assert evaluations[0].step == 0 and evaluations[-1].step == finished.step
    assert evaluations[-1].value >= 0.99 and not evaluations[0].success
    assert [e.step for e in evaluations] == list(range(0, finished.step + 1, 10))
    steps = [e for e in events if isinstance(e, train.Step)]
    assert [s.step for s in steps] == list(range(1, finished.step + 1))
    # training reduced the held-out loss from about log(4)
    assert evaluations[-1].heldout_loss < 0.5 * evaluations[0].heldout_loss


def test_same_seed_same_numbers_and_init_is_the_params_stream():
    a, b = _run(TINY), _run(TINY)
    assert [e.value for e in a[1]] == [e.value for e in b[1]]
    for k, v in a[0][-1].params.items():
        np.testing.assert_array_equal(v, b[0][-1].params[k])
    # the profile at step 0 is that of the model `gradients --seed 0` probes (same params stream)
    task = get_task("remember")
    init = models.init_params(TINY.model, task.input_size, task.output_size, seeds.stream(0, "params"))
    params = {k: v.copy() for k, v in init.items()}
    lone = list(train.train(TINY, params=params))[1]
    assert lone.heldout_loss == a[1][0].heldout_loss


def test_without_success_runs_the_whole_budget():
    cfg = TrainConfig(task="remember", gap=5, model=ModelSpec(hidden=4), batch=8, steps=7, lr=1e-4,
                      eval_every=5, eval_size=16, probe_size=4)
    events, evaluations = _run(cfg)
    assert [e.step for e in evaluations] == [0, 5, 7]  # and the last step is always evaluated
    assert events[-1].step == 7 and not events[-1].success


def test_huge_learning_rate_without_clipping_diverges():
    cfg = TrainConfig(task="adding", gap=10, model=ModelSpec(hidden=8), batch=16, steps=100, optimizer="sgd",
                      lr=1e6, clip=0.0, eval_every=50, eval_size=16, probe_size=4)
    events, _ = _run(cfg)
    assert isinstance(events[-1], train.Diverged)
    assert not math.isfinite(events[-1].loss) or not math.isfinite(events[-1].grad_norm)
    assert 1 <= events[-1].step < 100
    # with clipping the same run stays finite for a while: clipping is what bounds the step
    clipped = dataclasses_replace(cfg, clip=1.0, lr=1e-2, steps=30)
    assert isinstance(list(train.train(clipped))[-1], train.Finished)


def dataclasses_replace(cfg, **changes):
    import dataclasses

    return dataclasses.replace(cfg, **changes)


def test_evaluation_records_the_gradient_profile():
    _, evaluations = _run(TINY)
    row = evaluations[0].to_dict()
    T = get_task("remember").length(5)
    assert len(row["dh_rel"]) == T and len(row["dc_rel"]) == T
    assert row["dh_rel"][0] == 1.0
    assert row["dh_ratio_first_step"] == row["dh_rel"][-1]
    assert row["accuracy"] == evaluations[0].value


def test_copy_trains_on_the_loss_of_all_ten_answer_steps():
    """copy's held-out loss is summed over its 10 answer steps: near 10 log 8 at init (a one-step loss
    would be near log 8), and training lowers it."""
    cfg = TrainConfig(task="copy", gap=2, model=ModelSpec(hidden=8), batch=16, steps=20, lr=0.01,
                      eval_every=20, eval_size=32, probe_size=4)
    events, evaluations = _run(cfg)
    assert isinstance(events[-1], train.Finished)
    assert evaluations[0].heldout_loss == pytest.approx(10 * math.log(8), rel=0.1)
    assert evaluations[-1].heldout_loss < evaluations[0].heldout_loss
    assert TrainConfig(task="copy").resolved().steps == get_task("copy").steps == 5000
