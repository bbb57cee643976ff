"""Losses: values against their definitions, gradients against centred differences."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import assert_gradients_match, numerical_gradient

from lstm_cli import losses


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("name", ["cross_entropy", "mse"])
def test_gradient_matches_centred_differences(name, reduction):
    rng = np.random.default_rng(0)
    B, S, K = 3, 2, (4 if name == "cross_entropy" else 1)
    out = rng.standard_normal((B, S, K)) * 3
    y = rng.integers(0, K, size=(B, S)) if name == "cross_entropy" else rng.standard_normal((B, S))

    def total():
        per_seq, _ = losses.loss_and_grad(name, out, y, reduction)
        return float(per_seq.mean() if reduction == "mean" else per_seq.sum())

    per_seq, dout = losses.loss_and_grad(name, out, y, reduction)
    assert per_seq.shape == (B,) and dout.shape == out.shape
    assert_gradients_match(f"{name} ({reduction})", numerical_gradient(total, out), dout)


def test_cross_entropy_value_by_hand():
    out = np.array([[[1.0, 2.0, 3.0]]])  # (1, 1, 3)
    per_seq, dout = losses.cross_entropy(out, np.array([[0]]))
    log_z = math.log(math.e + math.e ** 2 + math.e ** 3)
    assert per_seq[0] == pytest.approx(log_z - 1.0, rel=1e-15)
    soft = np.exp(out[0, 0]) / np.exp(out[0, 0]).sum()
    np.testing.assert_allclose(dout[0, 0], soft - [1, 0, 0], rtol=1e-14)


def test_cross_entropy_is_stable_for_huge_logits():
    out = np.array([[[1000.0, -1000.0]], [[-1000.0, 1000.0]]])
    per_seq, dout = losses.cross_entropy(out, np.array([[0], [0]]), reduction="sum")
    assert np.all(np.isfinite(per_seq)) and np.all(np.isfinite(dout))
    assert per_seq[0] == 0.0 and per_seq[1] == pytest.approx(2000.0)


def test_sum_reduction_gives_each_sequence_its_own_gradient():
    rng = np.random.default_rng(1)
    out = rng.standard_normal((5, 1, 3))
    y = rng.integers(0, 3, size=(5, 1))
    _, d_mean = losses.cross_entropy(out, y, "mean")
    _, d_sum = losses.cross_entropy(out, y, "sum")
    np.testing.assert_allclose(d_sum, 5 * d_mean, rtol=1e-15)
    _, d_one = losses.cross_entropy(out[2:3], y[2:3], "sum")
    np.testing.assert_array_equal(d_sum[2:3], d_one)


def test_mse_value_and_float32():
    out = np.array([[[1.5]], [[0.0]]], dtype=np.float32)
    per_seq, dout = losses.mse(out, np.array([[1.0], [2.0]]))
    np.testing.assert_allclose(per_seq, [0.25, 4.0])
    np.testing.assert_allclose(dout[:, 0, 0], [0.5, -2.0])  # 2 * err / B
    assert dout.dtype == np.float32


def test_metrics():
    out = np.array([[[0.1, 0.9]], [[0.8, 0.2]], [[0.3, 0.7]]])
    assert losses.metric("accuracy", out, np.array([[1], [0], [0]])) == pytest.approx(2 / 3)
    assert losses.metric("mse", np.array([[[1.0]], [[3.0]]]), np.array([[0.0], [1.0]])) == 2.5
