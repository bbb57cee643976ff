"""What a trained cell does on one held-out sequence: its gates, cell state and output at every
step, for the units that matter most to the answer, and sentences derived from those numbers.

The units are picked by an exact ablation at the answer step(s): the head is linear,
out_s = W h_s + b, so setting unit j's output h_s[j] to 0 changes the answer's logits by
exactly -W[:, j] h_s[j]. A unit's *contribution* is the mean, over the run's held-out
sequences, of how much that lowers the log-probability of the right answer (cross-entropy
tasks) or raises the squared error (MSE tasks), summed over the answer steps. Nothing else in
the model changes, so the number measures how much the answer reads this unit.

Whether a unit *stores* what the answer needs is measured over the same held-out sequences:
at every step t, the fraction of the variance of its memory (the cell state c_t of an LSTM,
h_t of a GRU or an RNN) that the target explains: the correlation ratio eta^2 (between-class
variance over total variance) for a class label, r^2 for a real target. A unit stores the
answer when that fraction is at least ``STORES`` (0.5) at the answer step.

Per step, for the shown sequence (``models.inner_values``):

    LSTM  i, f, o (the gates it has), c the cell state, h = o tanh(c)
    GRU   z (update), r (reset), h
    RNN   pre the pre-activation a_t, slope = act'(a_t) (tanh' = 1 - h^2), h

Every number in a sentence is one of the unit's ``facts``, formatted once here, and the
terminal table, JSON and CSV print those same strings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from lstm_cli import models
from lstm_cli.tasks import Task

STORES = 0.5  # fraction of a unit's memory variance the target must explain at the answer step
DEFAULT_UNITS = 4

QUANTITY_NAMES = {
    "i": "input gate", "f": "forget gate", "o": "output gate", "c": "cell state", "h": "output",
    "z": "update gate", "r": "reset gate", "pre": "pre-activation", "slope": "act'",
}
# what the answer needs, in the task's words (the first answer's target, for copy)
WHAT = {"remember": "the first symbol", "agreement": "the subject's number",
        "temporal-order": "the order of the two marked symbols", "adding": "the sum of the marked values"}


def what_is_needed(task: Task, answer: int) -> str:
    """What the ``answer``-th answer step needs, in the task's words."""
    if len(task.answer_steps) > 1:
        return f"symbol {answer + 1} of the {len(task.answer_steps)} to copy"
    return WHAT.get(task.name, "the answer")


@dataclass
class Unit:
    unit: int
    answer: int  # which answer step (0 for every task but copy) the unit's storage is measured against
    contribution: float  # mean drop of the right answer's log-probability (or rise of squared error)
    stored: np.ndarray  # (T,) fraction of the memory's variance the target explains, per step
    values: dict[str, np.ndarray]  # quantity -> (T,) on the shown sequence
    facts: dict[str, str] = field(default_factory=dict)  # name -> the printed number
    sentence: str = ""


@dataclass
class Inspection:
    kind: str
    label: str
    task: str
    gap: int
    index: int
    symbols: list[str]  # one short label per step of the shown sequence
    info_steps: list[int]  # where the answer's information enters (this sequence)
    answer_steps: list[int]  # where the answer is asked for
    target: list  # the shown sequence's target(s)
    prediction: list  # the model's answer(s) for it
    metric: str
    heldout_value: float  # the metric over the held-out sequences
    heldout_size: int
    chance: float
    learned: bool  # the held-out metric meets the task's criterion
    criterion: str
    quantities: tuple[str, ...]
    units: list[Unit]
    selection: str  # how the units were picked, in words, with their contributions
    summary: list[str]  # sentences about the model as a whole
    run_status: str | None = None  # the run record's status, when there is one
    source: str = ""

    @property
    def steps(self) -> int:
        return len(self.symbols)

    @property
    def sentences(self) -> list[str]:
        return [*self.summary, *(unit.sentence for unit in self.units)]

    def to_dict(self) -> dict:
        return {
            "source": self.source, "model": self.label, "kind": self.kind, "task": self.task, "gap": self.gap,
            "index": self.index, "steps": self.steps, "symbols": self.symbols, "info_steps": self.info_steps,
            "answer_steps": self.answer_steps, "target": self.target, "prediction": self.prediction,
            "metric": self.metric, "heldout_value": self.heldout_value, "heldout_size": self.heldout_size,
            "chance": self.chance, "criterion": self.criterion, "learned": self.learned,
            "run_status": self.run_status, "quantities": list(self.quantities), "selection": self.selection,
            "summary": self.summary,
            "units": [{"unit": u.unit, "answer_step": self.answer_steps[u.answer], "contribution": u.contribution, "facts": u.facts, "sentence": u.sentence,
                       "stored": u.stored.tolist(), "values": {q: v.tolist() for q, v in u.values.items()}}
                      for u in self.units],
        }


# ---- the numbers as printed ----

def fixed(value: float, places: int = 2) -> str:
    """A number with ``places`` decimals (rounded), "-0.00" written "0.00"."""
    text = f"{value:.{places}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def at_least(value: float, places: int = 3) -> str:
    """A lower bound of ``value`` with ``places`` decimals (rounded down, so "at least" stays true)."""
    return fixed(math.floor(value * 10 ** places) / 10 ** places, places)


def at_most(value: float, places: int = 3) -> str:
    """An upper bound of ``value`` with ``places`` decimals (rounded up, so "at most" stays true)."""
    return fixed(math.ceil(value * 10 ** places) / 10 ** places, places)


def percent(fraction: float) -> str:
    """A fraction as whole percent, rounded down (97.9% is "97%": never more than measured)."""
    return f"{math.floor(100 * fraction + 1e-9):.0f}%"


def significant(value: float) -> str:
    return f"{value:.3g}"


# ---- the task's steps ----

def step_symbols(task: Task, x_row: np.ndarray) -> list[str]:
    """One character per step of a sequence x_row (T, D): what the model sees there."""
    if task.name == "adding":
        return ["*" if marker > 0.5 else "·" for marker in x_row[:, 1]]
    ids = x_row.argmax(axis=-1)
    last = x_row.shape[-1] - 1
    if task.name == "remember":  # 0..3 symbols, 4..7 distractors, 8 query
        return ["?" if i == last else "ABCD"[i] if i < 4 else "·" for i in ids]
    if task.name == "temporal-order":  # 0 X, 1 Y, 2..5 distractors, 6 query
        return ["?" if i == last else "XY"[i] if i < 2 else "·" for i in ids]
    if task.name == "agreement":  # 4 singular, 4 plural subjects, fillers, the verb slot
        return ["?" if i == last else "S" if i < 4 else "P" if i < 8 else "·" for i in ids]
    if task.name == "copy":  # 0..7 symbols, 8 blank, 9 delimiter
        return [str(i) if i < 8 else ":" if i == 9 else "·" for i in ids]
    return ["?" if i == last else str(i % 10) for i in ids]


def info_steps(task: Task, x_row: np.ndarray) -> list[int]:
    """The steps where the answer's information enters this sequence."""
    T = x_row.shape[0]
    if task.name == "adding":
        return [int(t) for t in np.flatnonzero(x_row[:, 1] > 0.5)]
    if task.name == "temporal-order":
        return [0, T - 2]
    if task.name == "copy":
        return list(range(len(task.answer_steps)))  # the symbols to copy, in the order they are asked for
    return [0]


# ---- the measurement ----

def explained(memory: np.ndarray, target: np.ndarray, classes: bool) -> np.ndarray:
    """(T, H): the fraction of the variance of memory (B, T, H) over the sequences that the target
    (B,) explains, at every step and unit: eta^2 for class labels, r^2 for a real target."""
    total = memory.var(axis=0)  # (T, H)
    if classes:
        between = np.zeros_like(total)
        mean = memory.mean(axis=0)
        for label in np.unique(target):
            members = memory[target == label]
            between += len(members) / len(memory) * (members.mean(axis=0) - mean) ** 2
    else:
        centred = target - target.mean()
        cov = np.einsum("b,bth->th", centred, memory - memory.mean(axis=0)) / len(memory)
        between = cov ** 2 / max(float(centred.var()), 1e-300)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total > 1e-24, between / np.where(total > 0, total, 1.0), 0.0)
    return np.clip(share, 0.0, 1.0)


def contributions(params: dict[str, np.ndarray], task: Task, out: np.ndarray, h_answer: np.ndarray,
                  y: np.ndarray) -> np.ndarray:
    """(H,) each unit's mean contribution to the answer (the module docstring's ablation).

    out (B, S, K) the head's outputs, h_answer (B, S, H) the outputs h at the answer steps."""
    w = params["head.weight"]  # (K, H)
    ablated = out[:, :, None, :] - h_answer[..., None] * w.T  # (B, S, H, K): unit j's h_s set to 0
    if task.loss == "mse":
        err = (out[..., 0] - y) ** 2  # (B, S)
        return ((ablated[..., 0] - y[..., None]) ** 2 - err[..., None]).sum(axis=1).mean(axis=0)

    def log_p_right(logits):  # (..., K) -> log-probability of the label
        shifted = logits - logits.max(axis=-1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
        labels = y.astype(np.int64).reshape(y.shape + (1,) * (logits.ndim - 2))  # (B, S, 1[, 1])
        return np.take_along_axis(log_p, np.broadcast_to(labels, log_p.shape[:-1] + (1,)), axis=-1)[..., 0]

    return (log_p_right(out)[..., None] - log_p_right(ablated)).sum(axis=1).mean(axis=0)


def inspect(spec, params: dict[str, np.ndarray], task: Task, gap: int, x: np.ndarray, y: np.ndarray,
            index: int, units: int = DEFAULT_UNITS, run_status: str | None = None,
            source: str = "") -> Inspection:
    """Run the held-out sequences x (B, T, D), y (B, S) through the model and describe sequence ``index``."""
    from lstm_cli import losses

    out, cache = models.forward(params, x, answer_steps=task.answer_steps, spec=spec)
    values = models.inner_values(params, cache)  # name -> (B, T, H)
    T = x.shape[1]
    answer_steps = [a % T for a in task.answer_steps]
    h_answer = values["h"][:, answer_steps]  # (B, S, H)
    classes = task.loss != "mse"
    with np.errstate(all="ignore"):
        contribution = contributions(params, task, out, h_answer, y)
        # (S, T, H): per answer step, the share of each unit's memory that its target explains
        stored = np.stack([explained(values[spec.cell.memory_value], y[:, s], classes) for s in range(y.shape[1])])
    # each unit is judged against the answer it stores best (the one answer of every task but copy)
    best_answer = np.argmax(stored[np.arange(len(answer_steps)), answer_steps], axis=0)  # (H,)
    heldout = losses.metric(task.metric, out, y)
    order = np.argsort(-np.nan_to_num(contribution, nan=-np.inf), kind="stable")[:max(1, min(units, spec.hidden))]
    x_row = x[index]
    prediction = (out[index].argmax(axis=-1).tolist() if task.metric == "accuracy"
                  else [float(v) for v in out[index, :, 0]])
    inspection = Inspection(
        kind=spec.kind, label=spec.label(), task=task.name, gap=gap, index=index,
        symbols=step_symbols(task, x_row), info_steps=info_steps(task, x_row), answer_steps=answer_steps,
        target=y[index].tolist(), prediction=prediction, metric=task.metric, heldout_value=heldout,
        heldout_size=len(x), chance=task.chance, learned=task.succeeded(heldout), criterion=task.criterion,
        quantities=tuple(values), units=[
            Unit(unit=int(j), answer=int(best_answer[j]), contribution=float(contribution[j]),
                 stored=stored[best_answer[j], :, j],
                 values={q: v[index, :, j].copy() for q, v in values.items()}) for j in order],
        selection="", summary=[], run_status=run_status, source=source)
    _describe(inspection, spec, task)
    return inspection


# ---- the words ----

def _spans(inspection: Inspection, unit: Unit) -> tuple[int, list[int], int]:
    """(the step where the unit's answer's information last enters, the steps held between it and
    the answer, the answer step)."""
    answer = inspection.answer_steps[unit.answer]
    if len(inspection.answer_steps) > 1:  # copy: the symbol asked for at answer k came in at step k
        info = inspection.info_steps[unit.answer]
    else:
        before = [s for s in inspection.info_steps if s < answer]
        info = before[-1] if before else 0
    return info, list(range(info + 1, answer)), answer


def _describe(inspection: Inspection, spec, task: Task) -> None:
    what = what_is_needed(task, 0) if len(task.answer_steps) == 1 else f"the {len(task.answer_steps)} symbols"
    loss_words = ("the rise in squared error" if task.loss == "mse"
                  else "the drop in the right answer's log-probability")
    picked = ", ".join(f"unit {u.unit} {significant(u.contribution)}" for u in inspection.units)
    inspection.selection = (
        f"Units picked by their contribution to the answer: {loss_words} when the unit's output h at the "
        f"answer step is set to 0 (the head is linear, so this is exact), averaged over "
        f"{inspection.heldout_size} held-out sequences: {picked}.")
    value = (f"{inspection.metric} {significant(inspection.heldout_value)} on {inspection.heldout_size} "
             f"held-out sequences (chance {significant(inspection.chance)}, success: {inspection.criterion})")
    summary = []
    if inspection.run_status not in (None, "completed"):
        summary.append(f"The run's status is {inspection.run_status}: it did not finish training.")
    if inspection.learned:
        summary.append(f"This model learned the task: {value}.")
    else:
        summary.append(f"This model did not learn the task: {value}; the units below show what it does "
                       f"instead of remembering {what}.")
    if spec.cell.inspect_clauses == "plain":
        summary.append(f"The {spec.cell.label} has no gates: its only memory is its output h, rewritten at every step "
                       "from the pre-activation; act' is how much of a change passes through the activation.")
    def share(u: Unit) -> float:
        return u.stored[inspection.answer_steps[u.answer]]

    if not any(share(u) >= STORES for u in inspection.units):
        best = max(inspection.units, key=share)
        needed = what_is_needed(task, best.answer)
        summary.append(f"No shown unit stores what the answer needs: the most of a shown unit's "
                       f"{QUANTITY_NAMES[spec.cell.memory_value]} variance explained at its answer step is "
                       f"{percent(share(best))} (unit {best.unit}, by {needed}).")
    inspection.summary = summary
    for unit in inspection.units:
        _describe_unit(inspection, unit, spec, what_is_needed(task, unit.answer))


def _describe_unit(inspection: Inspection, unit: Unit, spec, what: str) -> None:
    info, held, answer = _spans(inspection, unit)
    v, facts = unit.values, unit.facts
    memory_name = QUANTITY_NAMES[spec.cell.memory_value]
    share = unit.stored[answer]
    facts["contribution"] = significant(unit.contribution)
    facts["info_step"], facts["answer_step"], facts["held_steps"] = str(info), str(answer), str(len(held))
    if len(inspection.answer_steps) > 1:  # copy: which of the symbols the unit is judged against
        facts["symbol"], facts["symbols"] = str(unit.answer + 1), str(len(inspection.answer_steps))
    facts["stored_at_answer"] = percent(share)
    stores = share >= STORES
    if stores:
        since = answer
        while since > 0 and unit.stored[since - 1] >= STORES:
            since -= 1
        facts["stored_since"] = str(since)
        facts["stored_min"] = percent(unit.stored[since:answer + 1].min())
        head = (f"Unit {unit.unit} stores {what}: {what} explains {facts['stored_at_answer']} of the variance "
                f"of its {memory_name} at the answer step (step {answer}), and at least "
                f"{facts['stored_min']} at every step from step {facts['stored_since']} on.")
    else:
        head = (f"Unit {unit.unit} does not store {what}: {what} explains only {facts['stored_at_answer']} of "
                f"the variance of its {memory_name} at the answer step (step {answer}).")
    clauses = {"lstm": _lstm_clauses, "gru": _gru_clauses, "plain": _plain_clauses}[spec.cell.inspect_clauses](v, facts, info, held, answer)
    body = ", ".join(clauses[:-1]) + (", and " if len(clauses) > 1 else "") + clauses[-1]
    unit.sentence = f"{head} {body[0].upper()}{body[1:]}."


def _lstm_clauses(v: dict, facts: dict, info: int, held: list[int], answer: int) -> list[str]:
    clauses: list[str] = []
    n_held = len(held)
    if "i" in v:
        facts["i_info"] = fixed(v["i"][info])
        clause = f"its input gate is {facts['i_info']} at step {info}"
        if held:
            facts["i_gap_mean"] = fixed(v["i"][held].mean())
            clause += f" ({facts['i_gap_mean']} on average over the next {n_held} steps)"
        clauses.append(clause)
    if "f" in v and held:
        facts["f_gap_min"] = at_least(v["f"][held].min())
        facts["belt"] = significant(float(np.prod(v["f"][held])))
        clauses.append(f"its forget gate stays at or above {facts['f_gap_min']} for the next {n_held} steps "
                       f"(their product, the share of the cell kept, is {facts['belt']})")
    elif "f" not in v:
        clauses.append("it has no forget gate: its cell adds i g at every step and never forgets")
    facts["o_answer"] = fixed(v["o"][answer])
    clause = f"its output gate is {facts['o_answer']} at the answer step"
    if held:
        facts["o_gap_mean"] = fixed(v["o"][held].mean())
        clause += f" ({facts['o_gap_mean']} on average before it)"
    clauses.append(clause)
    facts["c_info"], facts["c_answer"] = fixed(v["c"][info]), fixed(v["c"][answer])
    clauses.append(f"its cell state is {facts['c_info']} at step {info} and {facts['c_answer']} at the answer step")
    return clauses


def _gru_clauses(v: dict, facts: dict, info: int, held: list[int], answer: int) -> list[str]:
    clauses: list[str] = []
    n_held = len(held)
    if held:
        facts["z_gap_min"] = at_least(v["z"][held].min())
        facts["belt"] = significant(float(np.prod(v["z"][held])))
        clauses.append(f"its update gate z stays at or above {facts['z_gap_min']} for the next {n_held} steps "
                       f"(each step keeps that share of the previous output; their product is {facts['belt']})")
    facts["z_info"] = fixed(v["z"][info])
    clauses.append(f"z is {facts['z_info']} at step {info} (the lower z, the more the new candidate replaces the state)")
    facts["h_info"], facts["h_answer"] = fixed(v["h"][info]), fixed(v["h"][answer])
    clauses.append(f"its output is {facts['h_info']} at step {info} and {facts['h_answer']} at the answer step")
    return clauses


def _plain_clauses(v: dict, facts: dict, info: int, held: list[int], answer: int) -> list[str]:
    clauses: list[str] = []
    n_held = len(held)
    if held:
        facts["slope_gap_max"] = at_most(v["slope"][held].max())
        facts["slope_gap_mean"] = fixed(v["slope"][held].mean())
        facts["pre_gap_min"], facts["pre_gap_max"] = fixed(v["pre"][held].min()), fixed(v["pre"][held].max())
        clauses.append(f"over the next {n_held} steps act' is at most {facts['slope_gap_max']} "
                       f"({facts['slope_gap_mean']} on average), its pre-activation between "
                       f"{facts['pre_gap_min']} and {facts['pre_gap_max']}")
    facts["h_info"], facts["h_answer"] = fixed(v["h"][info]), fixed(v["h"][answer])
    clauses.append(f"its output is {facts['h_info']} at step {info} and {facts['h_answer']} at the answer step")
    return clauses
