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
- ``bound`` (RNN): (gamma * sigma_max(W_hh))^k, gamma = max act' = 1 for tanh
  and relu, the upper bound of Pascanu, Mikolov & Bengio (2013) on ||dh_T/dh_t||;
  ``spectral_radius`` rho(W_hh) beside ``sigma_max``: over long products the
  matrix's share of each step tends to rho, not to sigma_max.

**Why, exactly: the split of each step back into its causes.**

RNN. Per sequence, with a_t the pre-activation and u_t = act'(a_t) * dh_t the
gradient at a_t, one step back where the head adds nothing is

    ||dh_{t-1}|| / ||dh_t||  =  (||u_t|| / ||dh_t||)  x  (||W_hh^T u_t|| / ||u_t||)
                                 the activation's share   the recurrent matrix's share

The log10 of each factor, summed over the steps back and averaged over the
batch, gives ``decades_activation`` and ``decades_recurrent`` per step back;
they add up to ``decades_total``, the batch mean of log10 of each sequence's
own ||dh_t|| / ||dh_s|| (a geometric mean, so it can differ from log10 of
``dh_rel``, a ratio of batch means). s is the *earliest answer step*: where the
head adds gradient at several steps (a loss at each of the last steps), the
steps between the last answer and the earliest one are not split (NaN there)
and the split starts at s, steps back ``split_from``; with one answer step at
the end, s is the loss step (0 steps back). A norm that becomes exactly 0
counts as -inf decades on the factor that zeroed it and 0 on every later step.
``activation_slope`` is the mean act'(a_t) over the units, sequences and steps
of the split; ``summary["decades"]`` holds the three totals at the farthest step.

LSTM. dl/dc_t is split into the direct path along the cell state (the
"conveyor belt") and the rest:

    belt_t = f_{t+1} * belt_{t+1} + o_t * tanh'(c_t) * (the head's gradient at h_t)

is what would reach c_t if h_{t-1} were detached before it feeds the gates of
step t: with one answer step, dc_answer * prod f. ``gates_t`` = dc_t - belt_t
arrives through h_t and the gates. ``belt`` and ``gates`` are their mean norms
and ``belt_rel`` / ``gates_rel`` relative to ||dl/dc|| at the loss step, like
``dc_rel``; ``summary`` holds both at the farthest step, the direct path's share
there (belt_rel / dc_rel), and the belt factor's name and mean (f; a cell with
another belt names its own).

GRU. dl/dh_t splits the same way (cells/gru.py): the direct path along
z_t * h_{t-1}, direct_t = z_{t+1} * direct_{t+1} + (the head's gradient at h_t),
dl/dh_answer * prod z with one answer step, and the rest, dh_t - direct_t, that
arrives through n_t and the gates; ``belt`` / ``gates`` hold their norms.

Which of these a model gets is the cell's to say (``cells``: ``Cell.probe``).

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
import sys
from dataclasses import dataclass, field

import numpy as np

from lstm_cli import cells, losses, models
from lstm_cli.printed import significant
from lstm_cli.tasks import Task, check_gap

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
    forget: np.ndarray | None = None  # LSTM: mean f_t (GRU: mean z_t)
    forget_product: np.ndarray | None = None  # LSTM
    h_abs: np.ndarray | None = None  # RNN
    sigma_max: float | None = None  # RNN: largest singular value of W_hh
    spectral_radius: float | None = None  # RNN: largest |eigenvalue| of W_hh
    bound: np.ndarray | None = None  # RNN
    decades_activation: np.ndarray | None = None  # RNN: the split (module docstring)
    decades_recurrent: np.ndarray | None = None
    decades_total: np.ndarray | None = None
    belt: np.ndarray | None = None  # LSTM: mean ||direct path of dl/dc_t|| (GRU: of dl/dh_t)
    belt_rel: np.ndarray | None = None
    gates: np.ndarray | None = None  # LSTM: mean ||dl/dc_t - direct path||
    gates_rel: np.ndarray | None = None
    summary: dict = field(default_factory=dict)
    cell_numbers: dict = field(default_factory=dict)  # the cell's own numbers (Cell.probe), e.g. of its weights

    @property
    def carrier(self) -> str:
        return "dc" if self.dc is not None else "dh"

    def model_text(self, **changes) -> str:
        """A ``--model`` text for this model with ``changes`` (``models.model_text``): what advice
        proposes, so that the command it names builds this model but for the changes."""
        return models.model_text(self.model, **changes)

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
        for name in STEP_ARRAYS:
            value = getattr(self, name)
            if value is not None:
                steps[name] = value.tolist()
        d = {"label": self.label, "model": self.model, "task": self.task, "gap": self.gap,
             "batch": self.batch, "loss": self.loss, "sigma_max": self.sigma_max,
             "spectral_radius": self.spectral_radius, "summary": self.summary, "steps": steps}
        if self.cell_numbers:  # printed with the profile, so that the cell's words can quote them
            d["cell"] = self.cell_numbers
        return d


STEP_ARRAYS = ("dw", "dw_rel", "forget", "forget_product", "h_abs", "bound", "decades_activation",
               "decades_recurrent", "decades_total", "belt", "belt_rel", "gates", "gates_rel")


def probe(spec: models.ModelSpec, params: dict[str, np.ndarray], task: Task, x: np.ndarray,
          y: np.ndarray, gap: int, label: str | None = None) -> GradientProfile:
    """The gradient profile of ``params`` on the batch (x, y) of ``task``."""
    out, cache = models.forward(params, x, answer_steps=task.answer_steps, spec=spec)
    per_seq, dout = losses.loss_and_grad(task.loss, out, y, reduction="sum")
    grads = models.backward(params, cache, dout)
    B, T, _ = grads.dh.shape
    core = cache.core
    first_answer = min(s % T for s in cache.answer_steps)  # time index of the earliest answer step
    h_prev = core.states[:-1]  # (T, B, H) h_{t-1}, time-major
    dpre = grads.dpre.transpose(1, 0, 2)  # (T, B, G*H)
    # step t's share of dL/dW_hh (L = batch mean): dpre_t^T h_{t-1} / B
    dw = safe_norm(spec.cell.step_weight_grad(dpre, h_prev).reshape(T, -1)) / B
    dw = dw[::-1]
    profile = GradientProfile(
        label=label or spec.label(), model=spec.describe(), task=task.name, gap=gap, batch=B,
        loss=float(per_seq.mean()), steps_back=np.arange(T),
        dh=NormStats.of(safe_norm(grads.dh)), dw=dw, dw_rel=relative(dw))
    # the cell fills its own fields (its split or its direct path); it gets this module's norms and
    # splits as an argument, since cells sit below probes in the layers
    spec.cell.probe(profile, params, core, grads, models.head_gradient(params, cache, dout), first_answer,
                    sys.modules[__name__])
    profile.summary = summarise(profile)
    profile.summary["split_from"] = T - 1 - first_answer
    if profile.decades_total is not None:
        h = core.states[1:first_answer + 1]  # h_t of the steps the split crosses, t = 1 .. s
        slope = 1.0 - h * h if spec.activation == "tanh" else (h > 0).astype(h.dtype)  # act'(a_t)
        profile.summary["activation_slope"] = float(slope.mean()) if slope.size else None
    return profile


def recurrent_split(dh: np.ndarray, u: np.ndarray, first_answer: int) -> tuple[np.ndarray, ...]:
    """The RNN's split (module docstring): dh, u (T, B, H) time-major, u_t = act'(a_t) * dh_t.

    Returns the batch-mean cumulative decades (activation, recurrent, total), each (T,) in
    steps-back order, 0 at the earliest answer step and NaN between it and the loss step.
    """
    T = dh.shape[0]
    s = first_answer
    with np.errstate(divide="ignore", invalid="ignore"):
        log_dh = np.log10(safe_norm(dh))  # (T, B)
        log_u = np.log10(safe_norm(u))
        # step t -> t-1 for t = s .. 1: ||u_t|| / ||dh_t|| and ||dh_{t-1}|| / ||u_t||; 0 / 0 is no loss
        activation = np.where(np.isneginf(log_dh[1:s + 1]) & np.isneginf(log_u[1:s + 1]), 0.0,
                              log_u[1:s + 1] - log_dh[1:s + 1])
        recurrent = np.where(np.isneginf(log_u[1:s + 1]) & np.isneginf(log_dh[:s]), 0.0,
                             log_dh[:s] - log_u[1:s + 1])
        total = log_dh[:s + 1] - log_dh[s]  # (s+1, B) each sequence's own log10 ||dh_t|| / ||dh_s||
    out = []
    for per_step in (activation, recurrent):
        cumulative = np.zeros((s + 1, per_step.shape[1]))
        cumulative[:-1] = np.cumsum(per_step[::-1], axis=0)[::-1]  # summed from step s back to t
        out.append(cumulative)
    out.append(total)
    result = []
    for cumulative in out:
        by_step = np.full(T, np.nan)
        by_step[T - 1 - s:] = cumulative.mean(axis=1)[::-1]  # steps back T-1-s .. T-1
        result.append(by_step)
    return tuple(result)


def belt_split(profile: GradientProfile, direct: np.ndarray, total: np.ndarray, at_loss: float) -> None:
    """The direct path (T, B, H) of a carrier whose total is ``total`` (T, B, H), both time-major,
    and the rest (total - direct): their mean norms per step back, and relative to ``at_loss``."""
    profile.belt = safe_norm(direct).mean(axis=1)[::-1]
    profile.gates = safe_norm(total - direct).mean(axis=1)[::-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        profile.belt_rel, profile.gates_rel = profile.belt / at_loss, profile.gates / at_loss


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
    # the thresholds read the norms as printed (two significant digits), so a difference below a
    # printed digit (another CPU family's rounding) never changes the horizon or the verdict
    shown = np.array([significant(float(v)) for v in rel])
    below = np.nonzero(shown < VANISHING)[0]
    horizon = int(k[below[0]]) if below.size else None
    if math.isnan(far):
        verdict = "nan"
    elif math.isinf(far):
        verdict = "overflow"
    elif significant(far) < VANISHING:
        verdict = "vanishing"
    elif significant(far) > EXPLODING:
        verdict = "exploding"
    else:
        verdict = "stable"
    summary = {"carrier": profile.carrier, "relative_at_first_step": far, "steps_back_max": int(k[-1]),
               "decay_per_step": decay, "horizon": horizon, "verdict": verdict}
    if profile.decades_total is not None:
        summary["decades"] = {"activation": float(profile.decades_activation[-1]),
                              "recurrent": float(profile.decades_recurrent[-1]),
                              "total": float(profile.decades_total[-1])}
    if profile.belt_rel is not None:
        factor, gate = cells.get(profile.model["kind"]).belt_words(profile.model)
        summary.update(belt_rel=float(profile.belt_rel[-1]), gates_rel=float(profile.gates_rel[-1]),
                       belt_share=float(profile.belt_rel[-1] / rel[-1]) if rel[-1] > 0 else None,
                       belt_factor=factor, belt_gate=gate, belt_factor_mean=float(np.mean(profile.forget)))
    return summary


def probe_batch(task: Task, gap: int, batch: int, seed: int):
    """The one probe batch (x, y): ``batch`` sequences of ``task`` at ``gap`` from the seed's "probe"
    stream. ``gradients``, ``train`` (at every evaluation), ``run``, ``sweep`` and ``gradients --from``
    all measure on it, so one seed and one batch give one gradient at the first input."""
    from lstm_cli.seeds import stream

    return task.generate(stream(seed, "probe"), batch, gap)


def probe_at_init(spec: models.ModelSpec, task: Task, gap: int, batch: int, seed: int,
                  label: str | None = None) -> GradientProfile:
    """Probe a freshly initialised model. The batch depends only on (task, gap, batch, seed),
    so models probed with the same seed see the same sequences."""
    from lstm_cli import config
    from lstm_cli.seeds import stream

    check_gap(task, gap)
    config.check_memory(config.probe_bytes(spec.kind, spec.hidden, batch, task.length(gap), task.input_size),
                 f"probing {spec.label()} at gap {gap} with batch {batch}")
    x, y = probe_batch(task, gap, batch, seed)
    params = models.init_params(spec, task.input_size, task.output_size, stream(seed, "params"))
    return probe(spec, params, task, x, y, gap, label=label)


def batch_settings(task: Task, gap: int, batch: int, seed: int, source: str | None = None) -> dict:
    """What a set of profiles was measured on, as the renderers and the JSON print it;
    ``source`` is the run directory of a probed checkpoint (None: at initialisation)."""
    return {"task": task.name, "gap": gap, "sequence_length": task.length(gap), "batch": batch,
            "seed": seed, "from": source}
