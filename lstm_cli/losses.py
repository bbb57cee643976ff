"""Losses at the answer step(s), with their gradients.

out (B, S, K) are the head's outputs at the S answer steps, y (B, S) the
targets (class labels for cross-entropy, real numbers for MSE). Each loss
returns the per-sequence losses l (B,) (summed over answer steps) and the
gradient of the batch loss with respect to out:

- ``reduction="mean"``: L = mean_b l_b (what training minimises);
- ``reduction="sum"``: L = sum_b l_b, so that the gradient reaching sequence b
  is exactly dl_b/d(out_b) (what the gradient probes report).
"""

from __future__ import annotations

import numpy as np


def cross_entropy(out: np.ndarray, y: np.ndarray, reduction: str = "mean") -> tuple[np.ndarray, np.ndarray]:
    """Softmax cross-entropy; y (B, S) integer labels."""
    shifted = out - out.max(axis=-1, keepdims=True)  # (B, S, K), for a stable softmax
    log_z = np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    log_p = shifted - log_z
    B, S = y.shape
    rows, steps, labels = np.arange(B)[:, None], np.arange(S)[None, :], y.astype(np.int64)
    per_seq = -log_p[rows, steps, labels].sum(axis=1)
    dout = np.exp(log_p)  # softmax
    dout[rows, steps, labels] -= 1.0  # d/d logits = softmax - one_hot
    if reduction == "mean":
        dout /= out.shape[0]
    return per_seq, dout


def mse(out: np.ndarray, y: np.ndarray, reduction: str = "mean") -> tuple[np.ndarray, np.ndarray]:
    """Squared error; out (B, S, 1), y (B, S) real targets."""
    err = out[..., 0] - y  # (B, S)
    per_seq = (err ** 2).sum(axis=1)
    dout = (2.0 * err)[..., None]
    if reduction == "mean":
        dout /= out.shape[0]
    return per_seq, dout.astype(out.dtype, copy=False)


LOSSES = {"cross_entropy": cross_entropy, "mse": mse}


def loss_and_grad(name: str, out: np.ndarray, y: np.ndarray, reduction: str = "mean"):
    """(per-sequence losses (B,), d loss / d out (B, S, K)) for the loss ``name``."""
    return LOSSES[name](out, y, reduction)


def metric(name: str, out: np.ndarray, y: np.ndarray) -> float:
    """Held-out metric: "accuracy" (fraction of answer steps right) or "mse"."""
    if name == "accuracy":
        return float((out.argmax(axis=-1) == y).mean())
    return float(((out[..., 0] - y) ** 2).mean())
