"""Training: optimisers, gradient clipping and the loop, as plain functions.

One training step, with L the batch-mean loss at the answer step::

    x, y  = task.generate(train_stream, batch, gap)        fresh sequences every step
    g     = dL/dparams                                     models.forward / models.backward
    g     = g * min(1, clip / ||g||)                       global-norm clipping (Pascanu et al. 2013)
    params, state = update(optimizer, params, g, state)    Adam, SGD or SGD with momentum

Every ``eval_every`` steps (and at step 0 and the last step) the loop measures
the task's metric on a fixed held-out set and records the gradient profile
(``probes.probe``) on a fixed probe batch; it stops early as soon as the
held-out metric meets the task's success criterion. Each evaluation also
carries the clipping numbers over the steps since the one before: the median
and maximum pre-clip ||g|| and the fraction of steps where clipping fired
(``ClipLog``). Pascanu et al. 2013 (section 3.2) set the threshold from the
average norm over a large number of updates; the pre-clip norms are what that
heuristic looks at. How often clipping fires is this tool's record, not a
number the paper reports.

Randomness comes only from named seed streams (``seeds.stream``): "params"
for the initial weights (so ``gradients --seed S`` probes exactly the model
``train --seed S`` starts from), "train" for the batches, "heldout" for the
evaluation set and "probe" for the probe batch.

Optimisers are pure functions: ``update`` takes parameters, gradients and an
``OptState`` (dicts keyed exactly like the parameters) and returns new ones;
nothing is modified in place and there is no hidden step counter.

    sgd:       p <- p - lr g
    momentum:  v <- mu v + g;                 p <- p - lr v
    adam:      m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2
               p <- p - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)   (Kingma & Ba 2015)

The loop ``train(config)`` is a generator of events (``Started``, ``Step``,
``Evaluation``, then ``Diverged`` or ``Finished``) so that the run record
(``runs``) and the progress bar consume the same stream without the loop
knowing about either.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Iterator, NamedTuple

import numpy as np

from lstm_cli import config, losses, models, probes
from lstm_cli.errors import BadInput
from lstm_cli.models import ModelSpec
from lstm_cli.seeds import stream
from lstm_cli.tasks import Task, check_gap, get_task, with_task_defaults

ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of one training run. ``None`` means "the default for this task / optimiser".

    Defaults and bounds are the rows ``task``, ``gap``, ``seed`` and ``train.*`` of ``config.FIELDS``.
    """

    task: str = config.default("task")
    gap: int = config.default("gap")
    model: ModelSpec | None = None  # None: the task's default model (tasks.with_task_defaults)
    batch: int = config.default("train.batch")
    steps: int | None = None  # None: the task's budget (tasks.Task.steps)
    optimizer: str = config.default("train.optimizer")  # adam | sgd | momentum
    lr: float | None = None  # None: default_lr(optimizer, task)
    momentum: float = config.default("train.momentum")  # the "momentum" optimiser's mu
    clip: float = config.default("train.clip")  # global-norm clipping threshold; 0 disables it
    seed: int = config.default("seed")
    eval_every: int = config.default("train.eval_every")  # steps between evaluations (and gradient probes)
    eval_size: int = config.default("train.eval_size")  # held-out sequences
    probe_size: int = config.default("train.probe_size")  # sequences in the probe batch

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            if f.name != "model":
                object.__setattr__(self, f.name, config.check(_config_key(f.name), getattr(self, f.name)))
        if self.model is None:
            object.__setattr__(self, "model", ModelSpec(**with_task_defaults(self.task, {})))
        if not isinstance(self.model, ModelSpec):
            raise BadInput(f"model: must be a ModelSpec, got {self.model!r}")
        check_gap(get_task(self.task), self.gap)

    def resolved(self) -> TrainConfig:
        """A copy with the defaults filled in (steps from the task, lr from the optimiser)."""
        return dataclasses.replace(
            self,
            steps=get_task(self.task).steps if self.steps is None else self.steps,
            lr=default_lr(self.optimizer, self.task) if self.lr is None else float(self.lr))

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for YAML / JSON); the model as a nested dict of ModelSpec's fields."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["model"] = dataclasses.asdict(self.model)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """The inverse of ``to_dict``; unknown keys and bad values raise BadInput naming the key."""
        if not isinstance(d, dict):
            raise BadInput(f"a training config must be a mapping, got {type(d).__name__}")
        _reject_unknown(d, cls, "training setting")
        settings = dict(d)
        if "model" in settings:
            settings["model"] = _model_from(settings["model"])
        return cls(**settings)


def _config_key(name: str) -> str:
    """The ``config.FIELDS`` key of a TrainConfig field."""
    return name if name in config.FIELDS else f"train.{name}"


def default_lr(optimizer: str, task: str) -> float:
    """The learning rate used when none is given."""
    own = get_task(task).adam_lr
    if optimizer == "adam" and own is not None:
        return own
    return config.DEFAULT_LR[optimizer]


def _model_from(value: Any) -> ModelSpec:
    if isinstance(value, ModelSpec):
        return value
    if isinstance(value, str):
        return models.parse_model(value)
    if not isinstance(value, dict):
        raise BadInput(f"bad value for model: {value!r} (expected a mapping of model settings or 'kind:...')")
    _reject_unknown(value, ModelSpec, "model setting")
    try:
        return ModelSpec(**value)
    except TypeError as err:
        raise BadInput(f"bad model settings {value!r}: {err}") from None


def _reject_unknown(settings: dict, cls: type, what: str) -> None:
    """BadInput naming the first key of ``settings`` that is not a field of the dataclass ``cls``."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = [k for k in settings if k not in known]
    if unknown:
        raise BadInput(f"unknown {what} {unknown[0]!r}; known: {', '.join(sorted(known))}")


# ---- optimisers: pure functions over dicts keyed like the parameters ----

class OptState(NamedTuple):
    step: int  # updates taken so far (Adam's bias correction)
    slots: dict[str, dict[str, np.ndarray]]  # per-slot dicts keyed like the parameters: "m", "v" or "velocity"


def init_state(optimizer: str, params: dict[str, np.ndarray]) -> OptState:
    """The optimiser's state before the first update (zeros)."""
    names = {"sgd": (), "momentum": ("velocity",), "adam": ("m", "v")}[optimizer]
    return OptState(step=0, slots={n: {k: np.zeros_like(p) for k, p in params.items()} for n in names})


def update(optimizer: str, params: dict[str, np.ndarray], grads: dict[str, np.ndarray], state: OptState,
           lr: float, momentum: float = 0.9) -> tuple[dict[str, np.ndarray], OptState]:
    """One optimiser step; returns new parameters and state (the inputs are not modified)."""
    if optimizer == "sgd":
        return {k: p - lr * grads[k] for k, p in params.items()}, OptState(state.step + 1, {})
    if optimizer == "momentum":
        velocity = {k: momentum * state.slots["velocity"][k] + grads[k] for k in params}
        new = {k: p - lr * velocity[k] for k, p in params.items()}
        return new, OptState(state.step + 1, {"velocity": velocity})
    if optimizer == "adam":
        b1, b2 = ADAM_BETAS
        t = state.step + 1
        m = {k: b1 * state.slots["m"][k] + (1 - b1) * grads[k] for k in params}
        v = {k: b2 * state.slots["v"][k] + (1 - b2) * grads[k] ** 2 for k in params}
        step_size = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)  # both bias corrections in one factor
        new = {k: p - step_size * m[k] / (np.sqrt(v[k]) + ADAM_EPS * math.sqrt(1 - b2 ** t))
               for k, p in params.items()}
        return new, OptState(t, {"m": m, "v": v})
    raise BadInput(f"unknown optimizer {optimizer!r}; choose one of: {', '.join(config.OPTIMIZERS)}")


def global_norm(grads: dict[str, np.ndarray]) -> float:
    """||g|| over every parameter together (inf or nan if any entry is)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return float(math.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads.values())))


def clipped(norm: float, max_norm: float) -> bool:
    """Whether clipping at ``max_norm`` scales a gradient of global norm ``norm`` (0 disables it)."""
    return max_norm > 0 and norm > max_norm


def clip_by_global_norm(grads: dict[str, np.ndarray], max_norm: float,
                        norm: float | None = None) -> dict[str, np.ndarray]:
    """Scale every gradient by min(1, max_norm / ||g||) (Pascanu et al. 2013); max_norm 0 disables."""
    norm = global_norm(grads) if norm is None else norm
    if not clipped(norm, max_norm):
        return grads
    scale = max_norm / norm
    return {k: g * scale for k, g in grads.items()}


# ---- the loop ----

@dataclass
class Started:
    config: TrainConfig  # resolved
    total_steps: int


@dataclass
class Step:
    step: int
    loss: float  # batch-mean training loss before this update
    grad_norm: float  # global gradient norm before clipping
    clipped: bool  # whether clipping scaled this step's gradient down (grad_norm > clip > 0)


class ClipLog:
    """The pre-clip global gradient norms of the steps taken and whether clipping fired; the
    norms are what the threshold heuristic of Pascanu et al. 2013 (section 3.2: the average norm
    over many updates) looks at. ``summary`` over all of them or the last ones."""

    def __init__(self, max_norm: float) -> None:
        self.max_norm = max_norm  # the clipping threshold (0: clipping disabled)
        self.norms: list[float] = []
        self.clipped: list[bool] = []

    def add(self, step: Step) -> None:
        self.norms.append(step.grad_norm)
        self.clipped.append(step.clipped)

    def summary(self, since: int = 0) -> dict[str, Any]:
        """Over the steps from index ``since`` on: the threshold, how many steps, how many clipped,
        their fraction, the median and maximum pre-clip norm (None when there are no steps)."""
        norms, clipped = self.norms[since:], self.clipped[since:]
        return {"clip": self.max_norm, "steps": len(norms), "clipped_steps": sum(clipped),
                "clipped_fraction": sum(clipped) / len(norms) if norms else None,
                "grad_norm_median": float(np.median(norms)) if norms else None,
                "grad_norm_max": max(norms) if norms else None}


@dataclass
class Evaluation:
    step: int
    train_loss: float | None  # mean training loss since the previous evaluation (None at step 0)
    heldout_loss: float
    metric: str  # "accuracy" or "mse"
    value: float  # the held-out metric
    success: bool  # value meets the task's success criterion
    profile: probes.GradientProfile  # on the fixed probe batch
    clipping: dict[str, Any]  # ClipLog.summary of the steps since the previous evaluation

    @property
    def dh_ratio(self) -> float:
        """||dL/dh|| at the first step relative to the answer step."""
        return float(self.profile.dh.rel[-1])

    @property
    def dc_ratio(self) -> float | None:
        return None if self.profile.dc is None else float(self.profile.dc.rel[-1])

    def to_dict(self) -> dict[str, Any]:
        """One line of metrics.jsonl."""
        d = {"step": self.step, "train_loss": self.train_loss, "heldout_loss": self.heldout_loss,
             self.metric: self.value, "success": self.success,
             "dh_ratio_first_step": self.dh_ratio, "dc_ratio_first_step": self.dc_ratio,
             "verdict": self.profile.summary["verdict"], "decay_per_step": self.profile.summary["decay_per_step"],
             "dh_rel": self.profile.dh.rel.tolist()}
        for key in ("grad_norm_median", "grad_norm_max", "clipped_fraction"):
            d[key] = self.clipping.get(key)
        if self.profile.dc is not None:
            d["dc_rel"] = self.profile.dc.rel.tolist()
        return d


@dataclass
class Diverged:
    step: int  # the step whose loss or gradient was not finite (no update was made with it)
    loss: float
    grad_norm: float | None  # None when the loss itself was not finite


@dataclass
class Finished:
    step: int  # updates taken
    success: bool
    params: dict[str, np.ndarray]


Event = Started | Step | Evaluation | Diverged | Finished


def evaluate(spec: ModelSpec, params: dict[str, np.ndarray], task: Task, x: np.ndarray,
             y: np.ndarray) -> tuple[float, float]:
    """(mean loss, metric) on a held-out set; forward only."""
    out, _ = models.forward(params, x, answer_steps=task.answer_steps, spec=spec)
    per_seq, _ = losses.loss_and_grad(task.loss, out, y)
    return float(per_seq.mean()), losses.metric(task.metric, out, y)


class RunState:
    """One run's own part of the loop: its resolved config, task, model, random streams, held-out
    and probe sets, optimiser state, losses since the last evaluation and clipping log.

    ``train`` drives one; ``stacked.train_stacked`` drives several that share their sizes, and
    calls the same methods, so the two loops evaluate, log and stop a run alike."""

    def __init__(self, config: TrainConfig, params: dict[str, np.ndarray] | None = None) -> None:
        self.cfg = cfg = config.resolved()
        self.task, self.spec = get_task(cfg.task), cfg.model
        if params is None:
            params = models.init_params(self.spec, self.task.input_size, self.task.output_size,
                                        stream(cfg.seed, "params"))
        self.params = params
        self.batches = stream(cfg.seed, "train")
        self.x_held, self.y_held = self.task.generate(stream(cfg.seed, "heldout"), cfg.eval_size, cfg.gap)
        self.x_probe, self.y_probe = probes.probe_batch(self.task, cfg.gap, cfg.probe_size, cfg.seed)
        self.state = init_state(cfg.optimizer, params)
        self.since_eval: list[float] = []
        self.clip_log, self.window_start = ClipLog(cfg.clip), 0

    def batch(self) -> tuple[np.ndarray, np.ndarray]:
        """The next training batch (x, y) of this run's own stream."""
        return self.task.generate(self.batches, self.cfg.batch, self.cfg.gap)

    def stepped(self, step: int, loss: float, norm: float) -> Step:
        """The Step event of an update taken, logged for the next evaluation."""
        self.since_eval.append(loss)
        event = Step(step=step, loss=loss, grad_norm=norm, clipped=clipped(norm, self.cfg.clip))
        self.clip_log.add(event)
        return event

    def evaluates_at(self, step: int) -> bool:
        return step % self.cfg.eval_every == 0 or step == self.cfg.steps

    def evaluation(self, step: int, params: dict[str, np.ndarray]) -> Evaluation:
        """The held-out metric and gradient profile of ``params`` at ``step``."""
        cfg, task, spec = self.cfg, self.task, self.spec
        with np.errstate(all="ignore"):  # a diverging model's inf and nan are reported, not warned about
            held_loss, value = evaluate(spec, params, task, self.x_held, self.y_held)
            profile = probes.probe(spec, params, task, self.x_probe, self.y_probe, cfg.gap, label=spec.label())
        train_loss = float(np.mean(self.since_eval)) if self.since_eval else None
        self.since_eval.clear()
        clipping, self.window_start = self.clip_log.summary(self.window_start), len(self.clip_log.norms)
        return Evaluation(step=step, train_loss=train_loss, heldout_loss=held_loss, metric=task.metric,
                          value=value, success=task.succeeded(value), profile=profile, clipping=clipping)


def train(config: TrainConfig, params: dict[str, np.ndarray] | None = None) -> Iterator[Event]:
    """Run the training loop, yielding events; ``params`` overrides the seeded initialisation."""
    run = RunState(config, params)
    cfg, task, spec, params, state = run.cfg, run.task, run.spec, run.params, run.state
    yield Started(config=cfg, total_steps=cfg.steps)
    result = run.evaluation(0, params)
    yield result
    step = 0
    while not result.success and step < cfg.steps:
        step += 1
        x, y = run.batch()
        with np.errstate(all="ignore"):
            out, cache = models.forward(params, x, answer_steps=task.answer_steps, spec=spec)
            per_seq, dout = losses.loss_and_grad(task.loss, out, y)
            loss = float(per_seq.mean())
            if not math.isfinite(loss):
                yield Diverged(step=step, loss=loss, grad_norm=None)
                return
            grads = models.backward(params, cache, dout).params
            norm = global_norm(grads)
            if not math.isfinite(norm):
                yield Diverged(step=step, loss=loss, grad_norm=norm)
                return
            params, state = update(cfg.optimizer, params, clip_by_global_norm(grads, cfg.clip, norm), state,
                                   cfg.lr, cfg.momentum)
        yield run.stepped(step, loss, norm)
        if run.evaluates_at(step):
            result = run.evaluation(step, params)
            yield result
    yield Finished(step=step, success=result.success, params=params)
