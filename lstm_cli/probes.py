"""Gradient probes: how much gradient reaches each time step.

For a model, its parameters and a batch, the probe runs the same
``models.forward`` / ``models.backward`` that training uses, with the loss
summed over sequences (``reduction="sum"``), so that the gradient reaching
sequence b is that of its own loss l_b. Per step t, indexed by
``steps_back`` k = (T - 1) - t from the last step (the answer step; for a task with
several answer steps, such as copy's last 10, L is the loss summed over all of them and
k still counts from the last, so dl/dh_t near the end mixes the gradients of the answers
after t, and from the first answer step back it is the gradient of all of them):

- ``dh``: ||dl/dh_t||, the total derivative through every later step: mean over
  sequences, and the 10th / 50th / 90th percentiles; ``dh_rel`` = mean / mean at k = 0;
- ``dc``: ||dl/dc_t|| likewise (LSTM);
- ``dw``: ||step t's share of dL/dW_hh|| = ||dpre_t^T h_{t-1}|| / B, with L the batch mean;
- ``forget`` (LSTM): the mean forget gate f_t, and ``forget_product``: the mean
  over sequences and units of prod_{s=t+1..T-1} f_s, the direct path of the
  cell state (the conveyor belt) back from the answer step; exactly 1 for the
  cell without a forget gate (f = 1). For the GRU the same two of its update
  gate z_t: h_t = (1 - z_t) n_t + z_t h_{t-1}, so prod z is h's direct path;
- ``h_abs`` (RNN): mean |h_t|, how saturated the tanh units are;
- ``bound`` (RNN): (gamma * sigma_max(W_hh))^k, gamma = 1 for tanh and relu,
  the upper bound of Pascanu, Mikolov & Bengio (2013) on ||dh_T/dh_t||.

The summary is read off the *carrier* of long-term gradient: dl/dc for the
LSTM, dl/dh for the RNN. ``decay`` is the per-step factor of a least-squares
line through log(relative norm) against k (k >= 1); ``horizon`` the first k
at which the relative norm falls below 1e-3 (None if it never does); the
verdict at the farthest step: "vanishing" below 1e-3, "exploding" above 1e3,
"stable" in between ("overflow" when a norm is inf, "nan" when it is NaN).

Norms are computed with scaling, so 1e-200 stays 1e-200 instead of
underflowing in the square; zeros, inf and NaN are kept, never dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from lstm_cli import losses, models
from lstm_cli.tasks import Task

VANISHING = 1e-3  # relative norm at the farthest step below this: vanishing
EXPLODING = 1e3  # above this: exploding


def safe_norm(a: np.ndarray, axis: int = -1) -> np.ndarray:
    """Euclidean norm along ``axis`` without underflow or overflow in the squares."""
    peak = np.max(np.abs(a), axis=axis, keepdims=True)  # a's shape with `axis` of length 1
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        scaled = np.where(peak > 0, a / np.where(peak > 0, peak, 1.0), 0.0)
        peak = np.squeeze(peak, axis=axis)
        out = peak * np.sqrt(np.sum(scaled * scaled, axis=axis))
    return np.where(np.isinf(peak), np.inf, out)


@dataclass
class NormStats:
    """Per-step statistics of a per-sequence norm, indexed by steps back."""

    mean: np.ndarray  # (T,)
    p10: np.ndarray
    p50: np.ndarray
    p90: np.ndarray
    rel: np.ndarray  # mean / mean at k = 0

    @classmethod
    def of(cls, norms: np.ndarray) -> NormStats:
        """norms (B, T) in time order -> statistics in steps-back order."""
        back = norms[:, ::-1]
        mean = back.mean(axis=0)
        p10, p50, p90 = percentiles(back, (10, 50, 90))
        return cls(mean=mean, p10=p10, p50=p50, p90=p90, rel=relative(mean))


def percentiles(values: np.ndarray, qs: tuple[float, ...]) -> list[np.ndarray]:
    """Percentiles along axis 0 by linear interpolation (np.percentile's default method).

    Written out because np.percentile's first call imports numpy.ma, ~9 ms of the
    ~200 ms that a whole ``lstm-demo gradients`` process takes. A column holding a
    NaN gives NaN; equal neighbours (inf and inf) give themselves, not inf - inf.
    """
    ordered = np.sort(values, axis=0)
    has_nan = np.isnan(values).any(axis=0)
    out = []
    for q in qs:
        position = q / 100 * (len(ordered) - 1)
        lo = math.floor(position)
        hi = min(lo + 1, len(ordered) - 1)
        below, above = ordered[lo], ordered[hi]
        with np.errstate(invalid="ignore"):
            value = np.where(below == above, below, below + (above - below) * (position - lo))
        out.append(np.where(has_nan, np.nan, value))
    return out


def relative(values: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return values / values[0]


@dataclass
class GradientProfile:
    """The gradient flow of one model on one batch, per step back from the answer."""

    label: str
    model: dict  # ModelSpec.describe()
    task: str
    gap: int
    batch: int
    loss: float  # mean per-sequence loss on the probed batch
    steps_back: np.ndarray  # (T,) 0 .. T-1
    dh: NormStats
    dw: np.ndarray  # (T,)
    dw_rel: np.ndarray
    dc: NormStats | None = None  # LSTM
    forget: np.ndarray | None = None  # LSTM: mean f_t
    forget_product: np.ndarray | None = None  # LSTM
    h_abs: np.ndarray | None = None  # RNN
    sigma_max: float | None = None  # RNN: largest singular value of W_hh
    bound: np.ndarray | None = None  # RNN
    summary: dict = field(default_factory=dict)

    @property
    def carrier(self) -> str:
        return "dc" if self.dc is not None else "dh"

    @property
    def carrier_rel(self) -> np.ndarray:
        return (self.dc if self.dc is not None else self.dh).rel

    def to_dict(self) -> dict:
        """Plain Python (lists of floats; inf / nan stay float) for JSON and CSV writers."""
        steps: dict[str, list] = {"steps_back": self.steps_back.tolist()}
        for name in ("dh", "dc"):
            stats = getattr(self, name)
            if stats is not None:
                for part in ("mean", "p10", "p50", "p90", "rel"):
                    steps[f"{name}_{part}"] = getattr(stats, part).tolist()
        for name in ("dw", "dw_rel", "forget", "forget_product", "h_abs", "bound"):
            value = getattr(self, name)
            if value is not None:
                steps[name] = value.tolist()
        return {"label": self.label, "model": self.model, "task": self.task, "gap": self.gap,
                "batch": self.batch, "loss": self.loss, "sigma_max": self.sigma_max,
                "summary": self.summary, "steps": steps}


def probe(spec: models.ModelSpec, params: dict[str, np.ndarray], task: Task, x: np.ndarray,
          y: np.ndarray, gap: int, label: str | None = None) -> GradientProfile:
    """The gradient profile of ``params`` on the batch (x, y) of ``task``."""
    out, cache = models.forward(params, x, answer_steps=task.answer_steps, spec=spec)
    per_seq, dout = losses.loss_and_grad(task.loss, out, y, reduction="sum")
    grads = models.backward(params, cache, dout)
    B, T, _ = grads.dh.shape
    core = cache.core
    h_prev = core.states[:-1]  # (T, B, H) h_{t-1}, time-major
    dpre = grads.dpre.transpose(1, 0, 2)  # (T, B, G*H)
    # step t's share of dL/dW_hh (L = batch mean): dpre_t^T h_{t-1} / B
    dw = safe_norm((dpre.transpose(0, 2, 1) @ h_prev).reshape(T, -1)) / B
    dw = dw[::-1]
    profile = GradientProfile(
        label=label or spec.label(), model=spec.describe(), task=task.name, gap=gap, batch=B,
        loss=float(per_seq.mean()), steps_back=np.arange(T),
        dh=NormStats.of(safe_norm(grads.dh)), dw=dw, dw_rel=relative(dw))
    if grads.dc is not None:
        profile.dc = NormStats.of(safe_norm(grads.dc))
        profile.forget, profile.forget_product = belt_gate(core.gate("f"))
    elif spec.kind == "gru":  # the belt is h itself: one step back multiplies dh by z (the update gate)
        profile.forget, profile.forget_product = belt_gate(core.gate("z"))
    else:
        profile.h_abs = np.abs(core.states[1:]).mean(axis=(1, 2))[::-1]
        profile.sigma_max = float(np.linalg.norm(params["weight_hh"].astype(np.float64), 2))
        with np.errstate(over="ignore"):
            profile.bound = profile.sigma_max ** profile.steps_back.astype(np.float64)
    profile.summary = summarise(profile)
    return profile


def belt_gate(gate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The belt's gate (T, B, H), time-major: its mean per step and the mean over sequences and
    units of prod_{s=t+1..T-1} gate_s (a reversed cumulative product), both in steps-back order."""
    after = np.ones_like(gate)
    after[:-1] = np.cumprod(gate[:0:-1], axis=0)[::-1]
    return gate.mean(axis=(1, 2))[::-1], after.mean(axis=(1, 2))[::-1]


def summarise(profile: GradientProfile) -> dict:
    """Decay factor per step, horizon and verdict of the carrier (see the module docstring)."""
    rel = np.asarray(profile.carrier_rel, dtype=np.float64)
    k = profile.steps_back
    far = float(rel[-1])
    ok = np.isfinite(rel) & (rel > 0) & (k >= 1)
    decay = None
    if ok.sum() >= 2:
        slope = np.polyfit(k[ok], np.log(rel[ok]), 1)[0]
        decay = float(math.exp(slope))
    below = np.nonzero(rel < VANISHING)[0]
    horizon = int(k[below[0]]) if below.size else None
    if math.isnan(far):
        verdict = "nan"
    elif math.isinf(far):
        verdict = "overflow"
    elif far < VANISHING:
        verdict = "vanishing"
    elif far > EXPLODING:
        verdict = "exploding"
    else:
        verdict = "stable"
    return {"carrier": profile.carrier, "relative_at_first_step": far, "steps_back_max": int(k[-1]),
            "decay_per_step": decay, "horizon": horizon, "verdict": verdict}


def probe_at_init(spec: models.ModelSpec, task: Task, gap: int, batch: int, seed: int,
                  label: str | None = None) -> GradientProfile:
    """Probe a freshly initialised model. The batch depends only on (task, gap, batch, seed),
    so models probed with the same seed see the same sequences."""
    from lstm_cli.seeds import stream

    x, y = task.generate(stream(seed, "probe"), batch, gap)
    params = models.init_params(spec, task.input_size, task.output_size, stream(seed, "params"))
    return probe(spec, params, task, x, y, gap, label=label)


def batch_settings(task: Task, gap: int, batch: int, seed: int, source: str | None = None) -> dict:
    """What a set of profiles was measured on, as the renderers and the JSON print it;
    ``source`` is the run directory of a probed checkpoint (None: at initialisation)."""
    return {"task": task.name, "gap": gap, "sequence_length": task.length(gap), "batch": batch,
            "seed": seed, "from": source}
