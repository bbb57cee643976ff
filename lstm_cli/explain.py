"""Sentences from probe numbers: why the gradient vanishes, explodes or is carried.

Pure functions of a ``probes.GradientProfile`` (no rich, no typer); the render
layer prints what they return. Every sentence is generated from quantities
that are printed beside it (the profile's summary), never from a fixed story:

- a recurrent cell with a split of each step back into the activation's share
  and the recurrent matrix's share (``summary["decades"]``, the vanilla RNN)
  gets the decades lost (or gained) to each, the larger share named as the
  cause, and what that cause is in numbers (the spectral radius of W_hh, the
  mean derivative of the activation);
- a cell with a direct path along its state (``summary["belt_rel"]`` and
  ``summary["gates_rel"]``: the LSTM's cell state, and any cell that reports
  its own belt factor, ``summary["belt_factor"]``) gets both parts at the first
  input and which of them carries the gradient; its gates are called open only
  when their mean is at least ``OPEN_GATE``;
- every model gets a verdict that says whether the gradient *reaches* the first
  input, never whether anything "can be learned": a gradient that reaches the
  first input is necessary for learning, not sufficient (only ``train`` says).

"The article" is C. Olah, "Understanding LSTM Networks" (2015).
"""

from __future__ import annotations

import math

from lstm_cli.probes import VANISHING, GradientProfile

ARTICLE = 'C. Olah, "Understanding LSTM Networks", 2015'
OPEN_GATE = 0.9  # a gate is called open only when its mean is at least this


def sci(value: float | None) -> str:
    """Two significant digits in scientific notation; inf, nan and 0 spelled out."""
    if value is None:
        return ""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return "0" if value == 0 else f"{value:.1e}"


def decades(value: float) -> str:
    """|value| with one decimal, the way the split is quoted ("11.4 decades")."""
    return "infinitely many" if math.isinf(value) else f"{abs(value):.1f}"


def sentences(profile: GradientProfile, trained: bool = False) -> list[str]:
    """The explanation of one profile, sentence by sentence (advice only for a fresh model)."""
    s = profile.summary
    if s["verdict"] in ("overflow", "nan"):
        what = "overflowed to inf" if s["verdict"] == "overflow" else "became NaN"
        return [f"{profile.label}: the gradient {what} on the way back: the per-step factors are so large "
                f"that {profile.model['dtype']} cannot hold their product. Lower the recurrent scale, or clip "
                f"the gradient when training."]
    out = []
    if "decades" in s:
        out += split_sentences(profile, trained)
    if "belt_rel" in s:
        out += belt_sentences(profile, trained)
    out.append(verdict_sentence(profile, trained))
    return out


def main_cause(shares: dict[str, float], total: float) -> str:
    """The name of the share that carries most of the change: the most negative one when
    the gradient shrinks overall, the most positive one when it grows."""
    pick = min if total <= 0 else max
    return pick(shares, key=lambda name: shares[name])


def split_sentences(profile: GradientProfile, trained: bool) -> list[str]:
    """The activation's share vs the recurrent matrix's share, in decades (summary["decades"])."""
    s, d = profile.summary, profile.summary["decades"]
    act = profile.model.get("activation", "tanh")
    names = {"activation": f"{act}'", "recurrent": "W_hh"}
    slope = s.get("activation_slope")
    rho = profile.spectral_radius
    about = {"activation": f"mean {act}' {slope:.2f}" if slope is not None else f"mean {act}' n/a",
             "recurrent": f"spectral radius {rho:.2f}" if rho is not None else "spectral radius n/a"}
    steps = s["steps_back_max"] - s.get("split_from", 0)
    total = d["total"]
    if math.isnan(total) or math.isnan(d["activation"]) or math.isnan(d["recurrent"]):
        return [f"{profile.label}: the split of the gradient into {names['activation']} and W_hh is not "
                f"defined here (a norm is not finite)."]
    shares = {"activation": d["activation"], "recurrent": d["recurrent"]}
    cause = main_cause(shares, total)
    other = "recurrent" if cause == "activation" else "activation"
    lost = total <= 0
    theirs = shares[other]
    if theirs == 0 or (theirs < 0) == lost:
        second = f"{decades(theirs)} from {names[other]} ({about[other]})"
    else:
        second = f"{names[other]} {'gives' if lost else 'takes'} {decades(theirs)} " \
                 f"{'back' if lost else 'off'} ({about[other]})"
    head = (f"{profile.label}: per sequence, {decades(total)} decades {'lost' if lost else 'gained'} on "
            f"average over {steps} steps back: {decades(shares[cause])} from {names[cause]} "
            f"({about[cause]}), {second}.")
    return [head, cause_sentence(profile, cause, lost, trained)]


def cause_sentence(profile: GradientProfile, cause: str, lost: bool, trained: bool) -> str:
    """What the main cause is, in the numbers of the profile."""
    act = profile.model.get("activation", "tanh")
    slope = profile.summary.get("activation_slope")
    rho = profile.spectral_radius if profile.spectral_radius is not None else math.nan
    if cause == "recurrent":
        if lost and rho < 1:
            model = "rnn:init=orthogonal" + ("" if act == "tanh" else f",activation={act}")
            advice = ("" if trained else f" An orthogonal W_hh (--model {model}, spectral radius 1) "
                      f"removes this share and leaves only {act}'.")
            return (f"The main cause is W_hh, not {act}: its spectral radius {rho:.2f} < 1 shrinks the "
                    f"gradient at every step back whatever {act}' does.{advice}")
        if not lost and rho > 1:
            return (f"The main cause is W_hh: the gradient grows because its spectral radius {rho:.2f} > 1 "
                    f"multiplies it up at every step back faster than {act}' takes it down.")
        return (f"The main cause is W_hh: along the directions the gradient takes, it "
                f"{'shrinks' if lost else 'grows'} it, although its spectral radius is {rho:.2f} (the radius "
                f"rules only over long products).")
    mean_h = float(sum(profile.h_abs) / len(profile.h_abs)) if profile.h_abs is not None else math.nan
    if act == "tanh":
        why = (f"each unit passes the gradient times tanh' = 1 - h^2, the less the closer it saturates "
               f"(|h| near 1; here mean |h| {mean_h:.2f}, mean tanh' {slope:.2f})")
        article = (f' This is the case that study notes of the article ({ARTICLE}) call "tanh multiplied '
                   f'repeatedly"; the article itself does not say it.' if lost else "")
    else:
        why = f"each unit that is off (h = 0) passes no gradient (mean {act}' {slope:.2f})"
        article = ""
    verb = "shrinks" if lost else "grows"
    return f"The main cause is {act}': {why}, and the gradient {verb} step after step.{article}"


def belt_sentences(profile: GradientProfile, trained: bool) -> list[str]:
    """The direct path along the cell state vs the paths through h and the gates."""
    s = profile.summary
    factor, gate = s.get("belt_factor", "f"), s.get("belt_gate")
    far = s["steps_back_max"]
    belt, gates = s["belt_rel"], s["gates_rel"]
    carrier = "the direct path carries it" if belt >= gates else "the paths through h and the gates carry it"
    share = "" if s.get("belt_share") is None else f" ({s['belt_share']:.2g} of the total's norm)"
    path = ("the constant error carousel (no forget gate: the cell state alone, times exactly 1 per step)"
            if gate is None else f"the conveyor belt (the product of {factor}, the cell state alone)")
    out = [f"{profile.label}: of the cell state's gradient {far} steps back ({sci(s['relative_at_first_step'])} "
           f"of its size at the answer step), the direct path along {path} brings {sci(belt)}{share}, and the "
           f"paths through h and the gates {sci(gates)}: {carrier}."]
    mean = s.get("belt_factor_mean")
    if gate is not None and mean is not None:
        if mean >= OPEN_GATE:
            out.append(f"The {gate}s are open (mean {factor} = {mean:.2f} >= {OPEN_GATE:g}).")
        else:
            advice = ("" if trained or profile.model.get("kind") != "lstm" else
                      " Opening them (--forget-bias 3, or --model lstm:forget_bias=3) lengthens the direct path.")
            out.append(f"The {gate}s are not open (mean {factor} = {mean:.2f} < {OPEN_GATE:g}), so the direct "
                       f"path shrinks at every step back.{advice}")
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
                      slope_before: float | None, slope_after: float | None) -> str:
    """The split of a trained RNN's gradient at training step ``step`` next to its split at
    init (the numbers of a run record's ``gradient``): which share carries the loss now, and
    whether the activation saturated (its mean derivative fell) on the way."""
    act = f"{activation}'"
    a, w, t = (decades_after[k] for k in ("activation", "recurrent", "total"))
    if any(math.isnan(v) for v in (a, w, t)):
        return f"At training step {step} the split of the gradient into {act} and W_hh is not defined."
    shares = {act: a, "W_hh": w}
    cause = main_cause(shares, t)
    lost = t <= 0

    def said(v: float) -> str:
        return "-inf" if math.isinf(v) and v < 0 else f"{v:+.1f}"

    total = "exactly 0" if math.isinf(t) and t < 0 else f"{t:+.1f} decades"
    before = ("" if decades_before is None else
              f"; at init {said(decades_before['total'])}: {said(decades_before['activation'])} from {act}, "
              f"{said(decades_before['recurrent'])} from W_hh")
    out = (f"At training step {step}, {cause} carries the {'loss' if lost else 'growth'}: the gradient at the "
           f"first input is {total} per sequence ({said(a)} decades from {act}, {said(w)} from W_hh{before}).")
    if cause == act and lost and None not in (slope_before, slope_after) and slope_after < slope_before:
        saturated = "|h| near 1" if activation == "tanh" else "h = 0"
        passes = "no gradient passes" if slope_after == 0 else "little gradient passes"
        out += (f" The units saturated during training ({saturated}): mean {act} {slope_after:.2g}, against "
                f"{slope_before:.2g} at init, so {passes} {act}.")
    return out
