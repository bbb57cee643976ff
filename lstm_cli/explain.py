"""Sentences from probe numbers: why the gradient vanishes, explodes or is carried.

Pure functions of a ``probes.GradientProfile`` (no rich, no typer); the render
layer prints what they return. Every sentence is generated from quantities
that are printed beside it (the profile's summary), never from a fixed story:

- a recurrent cell with a split of each step back into the activation's share
  and the recurrent weight's share (``summary["decades"]``: the vanilla RNN's
  W_hh, the IndRNN's |u|) gets the decades lost (or gained) to each, the larger
  share named as the cause, and what that cause is in numbers (the cell's
  ``split_about`` and ``explain_cause``: the spectral radius of W_hh, the mean
  derivative of the activation);
- a cell with a direct path along its state (``summary["belt_rel"]`` and
  ``summary["gates_rel"]``: the LSTM's cell state, the GRU's z * h_{t-1}, each
  with its own belt factor, ``summary["belt_factor"]``, and words from its cell)
  gets both parts at the first input and which of them carries the gradient;
  its gates are called open only when their mean is at least ``OPEN_GATE``;
- a sentence decides on the numbers as it prints them (``lstm_cli.printed``): shares and
  totals to one decimal, radii and gate means to two, so a difference below what is printed
  (another CPU family's rounding) never changes a word;
- every model gets a verdict that says whether the gradient *reaches* the first
  input, never whether anything "can be learned": a gradient that reaches the
  first input is necessary for learning, not sufficient (only ``train`` says).

"The article" is C. Olah, "Understanding LSTM Networks" (2015).
"""

from __future__ import annotations

import math

from lstm_cli import cells
from lstm_cli.printed import fixed, largest, rounded, significant
from lstm_cli.printed import sci as printed_sci
from lstm_cli.probes import VANISHING, GradientProfile

OPEN_GATE = 0.9  # a gate is called open only when its mean is at least this


def sci(value: float | None) -> str:
    """Two significant digits in scientific notation (``printed.sci``); no value: empty."""
    return "" if value is None else printed_sci(value)


def decades(value: float) -> str:
    """|value| with one decimal, the way the split is quoted ("11.4 decades")."""
    return "infinitely many" if math.isinf(value) else fixed(abs(value), 1)


def sentences(profile: GradientProfile, trained: bool = False) -> list[str]:
    """The explanation of one profile, sentence by sentence (advice only for a fresh model)."""
    s = profile.summary
    if s["verdict"] in ("overflow", "nan"):
        return [overflow_sentence(profile, trained)]
    out = []
    if "decades" in s:
        out += split_sentences(profile, trained)
    if "belt_rel" in s:
        out += belt_sentences(profile, trained)
    out.append(verdict_sentence(profile, trained))
    return out


def overflow_sentence(profile: GradientProfile, trained: bool) -> str:
    """What overflowed, the forward pass (the loss is not finite) or the backward one; and, for a
    fresh model with a recurrent scale above 1, that scale brought back to 1 as a --model text."""
    dtype, scale = profile.model["dtype"], profile.model.get("recurrent_scale", 1)
    if profile.loss is None or not math.isfinite(profile.loss):
        grew = profile.h_abs is not None and not all(math.isfinite(v) for v in profile.h_abs)  # mean |h_t|
        what = (f"the forward pass failed: the loss is {sci(profile.loss)} in {dtype}"
                f"{', the states grew beyond what it can hold (mean |h| inf)' if grew else ''}, so there is no "
                f"gradient to follow")
    else:
        what = (f"the gradient {'overflowed to inf' if profile.summary['verdict'] == 'overflow' else 'became NaN'} "
                f"on the way back: the per-step factors are so large that {dtype} cannot hold their product")
    advice = ("" if trained or not scale > 1 else
              f" With recurrent_scale=1 (--model {profile.model_text(recurrent_scale=1.0)}) the recurrent weight "
              f"is {scale:g} times smaller.")
    return f"{profile.label}: {what}.{advice} When training, clipping the gradient bounds each update."


def main_cause(shares: dict[str, float], total: float) -> str:
    """The name of the share that carries most of the change: the most negative one when
    the gradient shrinks overall, the most positive one when it grows (as printed, to one
    decimal; of two that print the same, the first named)."""
    return largest(shares, 1, smallest=shrinks(total))


def shrinks(total: float) -> bool:
    """Whether a total in decades counts as lost: it prints (to one decimal) as 0.0 or less."""
    return rounded(total, 1) <= 0


def split_sentences(profile: GradientProfile, trained: bool) -> list[str]:
    """The activation's share vs the recurrent matrix's share, in decades (summary["decades"])."""
    s, d = profile.summary, profile.summary["decades"]
    cell = cells.get(profile.model["kind"])
    act = profile.model.get("activation", "tanh")
    names = dict(zip(("activation", "recurrent"), (n.format(activation=act) for n in cell.split_names)))
    about = cell.split_about(profile)
    steps = s["steps_back_max"] - s.get("split_from", 0)
    total = d["total"]
    if math.isnan(total) or math.isnan(d["activation"]) or math.isnan(d["recurrent"]):
        return [f"{profile.label}: the split of the gradient into {names['activation']} and {names['recurrent']} is not "
                f"defined here (a norm is not finite)."]
    shares = {"activation": d["activation"], "recurrent": d["recurrent"]}
    if rounded(total, 1) == 0:  # a total that prints as 0.0 has no direction, and no cause
        parts = [f"{decades(v)} from {names[k]}" if rounded(v, 1) == 0 else
                 (f"{names[k]} takes {decades(v)} off" if v < 0 else f"{names[k]} adds {decades(v)}")
                 for k, v in shares.items()]
        cancel = ", which cancel as printed" if all(rounded(v, 1) != 0 for v in shares.values()) else ""
        return [f"{profile.label}: per sequence, 0.0 decades net on average over {steps} steps back: "
                f"{' and '.join(parts)} ({about['activation']}; {about['recurrent']}){cancel}."]
    cause = main_cause(shares, total)
    other = "recurrent" if cause == "activation" else "activation"
    lost = shrinks(total)
    theirs = shares[other]
    if rounded(theirs, 1) == 0 or (theirs < 0) == lost:  # a share that prints as 0.0 has no direction
        second = f"{decades(theirs)} from {names[other]} ({about[other]})"
    else:
        second = f"{names[other]} {'gives' if lost else 'takes'} {decades(theirs)} " \
                 f"{'back' if lost else 'off'} ({about[other]})"
    head = (f"{profile.label}: per sequence, {decades(total)} decades {'lost' if lost else 'gained'} on "
            f"average over {steps} steps back: {decades(shares[cause])} from {names[cause]} "
            f"({about[cause]}), {second}.")
    out = [head]
    if math.isinf(total) and lost:  # the mean of log10 norms per sequence: one dead sequence makes it -inf
        out.append("At least one sequence's gradient is exactly 0 at the first input (infinitely many decades "
                   "lost), which makes the average per sequence infinite whatever the others do; the verdict "
                   "below reads the mean norm over sequences instead.")
    return out + [cell.explain_cause(profile, cause, lost, trained)]


def belt_sentences(profile: GradientProfile, trained: bool) -> list[str]:
    """The direct path along the cell state vs the paths through h and the gates."""
    s = profile.summary
    cell = cells.get(profile.model["kind"])
    factor, gate = s.get("belt_factor", "f"), s.get("belt_gate")
    far = s["steps_back_max"]
    belt, gates = s["belt_rel"], s["gates_rel"]
    carrier = ("the direct path carries it" if significant(belt) >= significant(gates)  # as printed (sci)
               else f"{cell.belt_rest} carry it")
    share = "" if s.get("belt_share") is None else f" ({s['belt_share']:.2g} of the total's norm)"
    path = cell.belt_path_words(factor, gate)
    state = cell.belt_state + "'s"
    out = [f"{profile.label}: of {state} gradient {far} steps back ({sci(s['relative_at_first_step'])} "
           f"of its size at the answer step), the direct path along {path} brings {sci(belt)}{share}, and "
           f"{cell.belt_rest} {sci(gates)}: {carrier}."]
    mean = s.get("belt_factor_mean")
    if gate is not None and mean is not None:
        product = ("" if profile.forget_product is None else
                   f" The product of {factor} over the {far} steps back averages "
                   f"{sci(float(profile.forget_product[-1]))}.")
        if rounded(mean, 2) >= OPEN_GATE:  # as printed
            out.append(f"The {gate}s are open (mean {factor} = {mean:.2f} >= {OPEN_GATE:g}).{product}")
        else:
            advice = "" if trained else cell.belt_advice(profile)
            out.append(f"The {gate}s are not open (mean {factor} = {mean:.2f} < {OPEN_GATE:g}), so the direct "
                       f"path shrinks at every step back.{product}{advice}")
    return out


def verdict_sentence(profile: GradientProfile, trained: bool = False) -> str:
    """Whether the gradient reaches the first input; what that does not promise."""
    s = profile.summary
    rel, far = s["relative_at_first_step"], s["steps_back_max"]
    norm = "||dL/dc||" if s["carrier"] == "dc" else "||dL/dh||"
    if s["verdict"] == "vanishing":
        return (f"The gradient does not reach the first input: {norm} {far} steps back is {sci(rel)} of its "
                f"size at the answer step (below {VANISHING:g}).")
    if s["verdict"] == "exploding":
        return (f"The gradient reaches the first input {sci(rel)} times larger than at the answer step: one "
                f"update of that size throws the weights away, which is why training clips gradients.")
    reach = f"({norm} {far} steps back is {sci(rel)} of its size at the answer step)"
    if trained:
        return f"The gradient still reaches the first input {reach}."
    return (f"The gradient reaches the first input {reach}; that is necessary for learning the dependency, "
            f"not sufficient: only training says whether it is learned.")



def training_sentence(activation: str, step: int, decades_before: dict | None, decades_after: dict,
                      slope_before: float | None, slope_after: float | None, recurrent: str = "W_hh") -> str:
    """The split of a trained cell's gradient at training step ``step`` next to its split at
    init (the numbers of a run record's ``gradient``): which share carries the loss now, and
    whether the activation saturated (its mean derivative fell) on the way. ``recurrent`` names
    the recurrent share (the cell's ``split_names``: W_hh for the RNN)."""
    act = f"{activation}'"
    a, w, t = (decades_after[k] for k in ("activation", "recurrent", "total"))
    if any(math.isnan(v) for v in (a, w, t)):
        return f"At training step {step} the split of the gradient into {act} and {recurrent} is not defined."
    shares = {act: a, recurrent: w}
    cause = main_cause(shares, t)
    lost = shrinks(t)

    def said(v: float) -> str:
        return fixed(v, 1, signed=True)

    total = "exactly 0" if math.isinf(t) and t < 0 else f"{said(t)} decades"
    before = ("" if decades_before is None else
              f"; at init {said(decades_before['total'])}: {said(decades_before['activation'])} from {act}, "
              f"{said(decades_before['recurrent'])} from {recurrent}")
    if rounded(t, 1) == 0:  # a total that prints as 0.0: no loss, no growth, nothing carries it
        return (f"At training step {step} the gradient at the first input is {total} per sequence, no net "
                f"change ({said(a)} decades from {act}, {said(w)} from {recurrent}{before}).")
    out = (f"At training step {step}, {cause} carries the {'loss' if lost else 'growth'}: the gradient at the "
           f"first input is {total} per sequence ({said(a)} decades from {act}, {said(w)} from {recurrent}{before}).")
    if cause == act and lost and None not in (slope_before, slope_after) and \
            significant(slope_after) < significant(slope_before):  # as printed, {:.2g}
        saturated = "|h| near 1" if activation == "tanh" else "h = 0"
        passes = "no gradient passes" if slope_after == 0 else "little gradient passes"
        out += (f" The units saturated during training ({saturated}): mean {act} {slope_after:.2g}, against "
                f"{slope_before:.2g} at init, so {passes} {act}.")
    return out
