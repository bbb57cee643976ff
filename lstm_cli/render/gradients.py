"""Output of ``lstm-demo gradients``: one list of GradientProfile, four views.

- ``table``: a rich table for people, one row per chosen step back and a
  group of columns per model, a one-line summary per model under it and a
  short explanation in the terms of "Understanding LSTM Networks";
- ``json``: the settings and, per model, ``GradientProfile.to_dict()`` with
  every step (not only the rows of the table);
- ``csv``: one row per (model, step);
- the ``--plot`` file (``lstm_cli.plot``).

Every number shown is read off the profiles; nothing is recomputed here.
rich is imported only by the table view, so the JSON and CSV paths stay light.
"""

from __future__ import annotations

import math
import re
from typing import Any, Sequence

from lstm_cli.errors import BadInput
from lstm_cli.probes import EXPLODING, VANISHING, GradientProfile
from lstm_cli.render import write_csv, write_json

FORMATS = ("table", "json", "csv")
BAR_WIDTH = 12  # characters of a log-scale bar
MIN_DECADES = 10  # a bar always spans at least this many orders of magnitude
_BLOCKS = " ▏▎▍▌▋▊▉█"  # eighths of a character cell


# ---- which rows ----

def default_rows(farthest: int) -> list[int]:
    """0, 1, 2, 5, 10, 20, 30, ... (1-2-5 decades beyond 100) and always the farthest step."""
    steps = [0, 1, 2, 5, 10]
    if farthest <= 100:
        steps += list(range(20, farthest + 1, 10))
    else:
        decade = 10
        while decade <= farthest:
            steps += [2 * decade, 5 * decade, 10 * decade]
            decade *= 10
    return sorted({s for s in steps if s <= farthest} | {farthest})


def parse_rows(text: str, farthest: int) -> list[int]:
    """``--rows``: "default", "all" or a comma-separated list of steps back (0 = the loss step)."""
    text = text.strip().lower()
    if text in ("", "default"):
        return default_rows(farthest)
    if text == "all":
        return list(range(farthest + 1))
    steps = []
    for item in text.split(","):
        try:
            step = int(item.strip())
        except ValueError:
            raise BadInput(f"bad --rows {text!r}: use 'default', 'all' or steps back like 0,5,10") from None
        if not 0 <= step <= farthest:
            raise BadInput(f"--rows step {step} is outside 0..{farthest} (the steps back of this sequence)")
        steps.append(step)
    return sorted(set(steps))


# ---- numbers and words ----

def sci(value: float | None) -> str:
    """Scientific notation with two significant digits; inf, nan and 0 spelled out."""
    if value is None:
        return ""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return "0" if value == 0 else f"{value:.1e}"


def log_bar(value: float, low: int, high: int, width: int = BAR_WIDTH) -> str:
    """A bar whose length is log10(value) on the scale [low, high] decades (eighth-cell steps)."""
    if math.isnan(value):
        return "?"
    if value <= 0:
        return ""
    if math.isinf(value):
        return _BLOCKS[-1] * width
    fraction = (math.log10(value) - low) / (high - low)
    eighths = round(min(max(fraction, 0.0), 1.0) * width * 8)
    full, part = divmod(eighths, 8)
    return (_BLOCKS[-1] * full + (_BLOCKS[part] if part else "")).rstrip()


def bar_scale(values: Sequence[float]) -> tuple[int, int]:
    """Decades (low, high) covering 1 and every finite positive value, at least MIN_DECADES wide."""
    logs = [math.log10(v) for v in values if v > 0 and math.isfinite(v)] + [0.0]
    high = math.ceil(max(logs))
    low = min(math.floor(min(logs)), high - MIN_DECADES)
    return low, high


def _factor(x: float | None) -> str:
    return "n/a" if x is None else f"x{x:.3g}"


def _number(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3g}"


def init_words(profile: GradientProfile) -> str:
    """The init that produced the profile: W_hh init and scale, and the forget bias or sigma_max."""
    m = profile.model
    words = [f"{m['init']} W_hh", f"recurrent scale {m['recurrent_scale']:g}"]
    if m["kind"] == "gru":
        words.append(f"mean update gate {_mean(profile.forget):.2f}")
    elif m["kind"] == "lstm":
        if "chrono" in m:
            words.insert(0, f"chrono init T_max {m['chrono']:g}")
        elif "forget_bias" not in m:
            words.insert(0, "no forget gate (f = 1)")
        else:
            gate = 1.0 / (1.0 + math.exp(-m["forget_bias"]))
            words.insert(0, f"forget bias {m['forget_bias']:g} (sigmoid = {gate:.2f})")
        if profile.forget is not None:
            words.append(f"mean forget gate {_mean(profile.forget):.2f}")
    else:
        if m.get("activation", "tanh") != "tanh":
            words.insert(0, f"{m['activation']} activation")
        words.append(f"sigma_max(W_hh) {_number(profile.sigma_max)}")
    words.append(f"H {m['hidden']}")
    return ", ".join(words)


def _mean(values) -> float:
    values = [float(v) for v in values]
    return sum(values) / len(values)


def summary_line(profile: GradientProfile, trained: bool = False) -> str:
    """Decay per step, horizon, verdict and init (of a trained model: the init it started from), in one line."""
    s = profile.summary
    carrier = "||dL/dc||" if s["carrier"] == "dc" else "||dL/dh||"
    far = s["steps_back_max"]
    horizon = (f"below {VANISHING:g} from {s['horizon']} steps back" if s["horizon"] is not None
               else f"never below {VANISHING:g}")
    return (f"{profile.label}: {carrier} {_factor(s['decay_per_step'])} per step, {horizon}, "
            f"{sci(s['relative_at_first_step'])} at {far} steps back: {s['verdict'].upper()}. "
            f"{'Trained from init' if trained else 'Init'}: {init_words(profile)}.")


def explanation(profile: GradientProfile, trained: bool = False) -> str:
    """Two sentences on what the numbers mean, in the article's terms (advice on the init only
    for a fresh model: a trained one is what training made of it)."""
    s, m = profile.summary, profile.model
    verdict, far = s["verdict"], s["steps_back_max"]
    rel = sci(s["relative_at_first_step"])
    if verdict in ("overflow", "nan"):
        what = "overflowed to inf" if verdict == "overflow" else "became NaN"
        return (f"{profile.label}: the gradient {what} on the way back: the per-step factors are so large "
                f"that {m['dtype']} cannot hold their product. Lower the recurrent scale, or clip the "
                f"gradient when training.")
    if m["kind"] == "rnn":
        sigma = profile.sigma_max if profile.sigma_max is not None else float("nan")
        act = m.get("activation", "tanh")
        slope = "1 - h^2 <= 1" if act == "tanh" else "0 or 1"
        head = (f"{profile.label}: every step back multiplies the gradient by W_hh "
                f"(sigma_max {sigma:.3g}) and by the derivative of {act}, {slope}")
        if verdict == "vanishing":
            cause = (f"the bound (gamma*sigma_max)^k = {sigma:.3g}^k already forces it down"
                     if sigma < 1 else f"the {act} derivatives pull each factor below 1")
            consequence = ("the first input barely reaches the loss" if trained else
                           "the first input of the sequence cannot teach this RNN anything")
            return (f"{head}; {cause}, {_factor(s['decay_per_step'])} per step on average. Multiplied "
                    f"{far} times that leaves {rel} of the gradient: {consequence} (the long-term "
                    f"dependency problem).")
        if verdict == "exploding":
            return (f"{head}; with weights this large the {act} derivatives cannot pull the factors below 1, "
                    f"so the gradient grows {_factor(s['decay_per_step'])} per step, to {rel} times its size "
                    f"{far} steps back: one update of that size throws the weights away, which is why "
                    f"RNN training clips gradients.")
        advice = "" if trained else " That balance is fragile: try --recurrent-scale 0.5 or 3."
        return (f"{head}; here the factors stay close to 1, so the gradient keeps {rel} of its size over "
                f"{far} steps.{advice}")
    gate = _mean(profile.forget) if profile.forget is not None else float("nan")
    belt = sci(float(profile.forget_product[-1])) if profile.forget_product is not None else "n/a"
    if m["kind"] == "gru":
        return (f"{profile.label}: the GRU has no separate cell; h is its belt, and one step back along it "
                f"multiplies the gradient by the update gate z (mean {gate:.2f}), plus the paths through "
                f"the gates and n. The product of z over {far} steps is {belt}, and ||dL/dh|| keeps {rel} "
                f"of its size: {verdict}.")
    if verdict == "vanishing":
        state = "half closed" if gate < 0.6 else "only partly open"
        advice = ("" if trained else " An LSTM alone is not enough, its forget gate must be open: "
                  "--forget-bias 3 (or --model lstm:forget_bias=3).")
        return (f"{profile.label}: with the forget gates {state} (mean f = {gate:.2f}) the conveyor belt "
                f"leaks: each step back multiplies the cell-state gradient by about f, the forget-gate "
                f"product over {far} steps is {belt}, and it vanishes like an RNN's ({rel}).{advice}")
    if verdict == "exploding":
        return (f"{profile.label}: the direct path of the cell state multiplies by the forget gate, never "
                f"more than 1 per step (product {belt} over {far} steps), so the growth to {rel} comes "
                f"from the paths through h_(t-1) and the large recurrent weights into the gates.")
    consequence = "still reaches the loss" if trained else "can still be learned"
    return (f"{profile.label}: the cell state runs along the chain like a conveyor belt; one step back "
            f"multiplies its gradient by the forget gate f alone, with no squashing derivative in the way. "
            f"With the forget gates open (mean f = {gate:.2f}) the product over {far} steps is {belt} "
            f"and the cell-state gradient keeps {rel} of its size, so the first input {consequence}.")


# ---- machine formats ----

def json_document(profiles: Sequence[GradientProfile], settings: dict) -> dict:
    """The ``--format json`` document: settings, thresholds and every step of every model."""
    return {"command": "gradients", "settings": settings,
            "thresholds": {"vanishing": VANISHING, "exploding": EXPLODING},
            "models": [p.to_dict() for p in profiles]}


def csv_rows(profiles: Sequence[GradientProfile]) -> list[dict]:
    """One row per (model, step back), with the model's label, kind and verdict."""
    rows = []
    for profile in profiles:
        d = profile.to_dict()
        steps = d["steps"]
        for i in range(len(steps["steps_back"])):
            row: dict[str, Any] = {"label": d["label"], "kind": d["model"]["kind"], "task": d["task"],
                                   "gap": d["gap"], "verdict": d["summary"]["verdict"]}
            row.update({name: values[i] for name, values in steps.items()})
            rows.append(row)
    return rows


CSV_FIELDS = ["label", "kind", "task", "gap", "verdict", "steps_back",
              "dh_mean", "dh_p10", "dh_p50", "dh_p90", "dh_rel",
              "dc_mean", "dc_p10", "dc_p50", "dc_p90", "dc_rel",
              "dw", "dw_rel", "forget", "forget_product", "h_abs", "bound"]


# ---- the table ----

def _columns(profile: GradientProfile, level: int) -> list[tuple[str, list[str] | None]]:
    """(header, cells by step) of one model's columns, the bar's cells None; level 0 shows
    everything, each higher level less detail (never the carrier's relative norm)."""
    bar_header = "log " + profile.carrier  # the bar shows the carrier, the norm the verdict reads
    cols = [("||dL/dh||", [sci(v) for v in profile.dh.mean]), ("dh rel", [sci(v) for v in profile.dh.rel])]
    if profile.dc is not None:
        cols += [("||dL/dc||", [sci(v) for v in profile.dc.mean]), ("dc rel", [sci(v) for v in profile.dc.rel]),
                 (bar_header, None), ("prod f", [sci(v) for v in profile.forget_product])]
    elif profile.forget_product is not None:  # the GRU: its belt is h, its gate z
        cols += [(bar_header, None), ("prod z", [sci(v) for v in profile.forget_product])]
    else:
        cols += [(bar_header, None), ("bound", [sci(v) for v in profile.bound])]
    hidden = set()
    if level >= 1:
        hidden |= {"||dL/dh||", "||dL/dc||"}
    if level >= 2:
        hidden |= {"bound", "prod f", "prod z"} | ({"dh rel"} if profile.dc is not None else set())
    if level >= 3:
        hidden.add(bar_header)
    return [c for c in cols if c[0] not in hidden]


def wrap_label(label: str, width: int = 10) -> list[str]:
    """A model label in lines of about ``width``, broken after ':', ',', '=' or '_'."""
    lines = [""]
    for piece in re.split(r"(?<=[:,=_])", label):
        if lines[-1] and len(lines[-1]) + len(piece) > width:
            lines.append("")
        lines[-1] += piece
    return lines


def _build_table(profiles, steps, low, high, level, width):
    from rich import box
    from rich.table import Table

    labels = [wrap_label(p.label) for p in profiles]
    depth = max(len(lines) for lines in labels)  # header lines above the column names
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 0, 0, 1), pad_edge=False, show_edge=False)
    table.add_column("\n" * (depth - 1) + "steps\nback", justify="right", no_wrap=True)
    cells = [[str(k)] for k in steps]
    for profile, lines in zip(profiles, labels):
        for n, (header, values) in enumerate(_columns(profile, level)):
            above = lines if n == 0 else []
            title = "\n".join([""] * (depth - len(above)) + above + [header])
            if values is None:
                table.add_column(title, justify="left", no_wrap=True, min_width=width, max_width=width)
                values = [log_bar(float(v), low, high, width) for v in profile.carrier_rel]
            else:
                table.add_column(title, justify="right", no_wrap=True)
            for row, k in zip(cells, steps):
                row.append(values[k])
    for row in cells:
        table.add_row(*row)
    return table


def render_table(profiles: Sequence[GradientProfile], steps: Sequence[int], title: str, console,
                 trained: bool = False) -> None:
    """The table, then one summary line per model, then the explanation, on ``console``."""
    from rich.measure import Measurement
    from rich.text import Text

    low, high = bar_scale([float(v) for p in profiles for v in p.carrier_rel])
    console.print(Text(title, style="bold"))
    # drop detail columns (not rows, not verdicts) until the table fits the terminal
    for level, width in ((0, BAR_WIDTH), (0, 10), (1, 10), (2, 10), (2, 6), (3, 0)):
        table = _build_table(profiles, steps, low, high, level, width)
        unbounded = console.options.update_width(10_000)  # Measurement.get clamps to the width given
        if Measurement.get(console, unbounded, table).maximum <= console.width:
            break
    console.print(table)
    if level < 3:
        console.print(Text(f"log: a bar of log10 of the relative norm, empty at 1e{low:+03d}, full at "
                           f"1e{high:+03d} (||dL/dh|| for an RNN, the cell state's ||dL/dc|| for an LSTM)",
                           style="dim"))
    if level > 0:
        console.print(Text("(narrow terminal: some columns hidden; widen it, or use --format json)", style="dim"))
    styles = {"vanishing": "bold yellow", "exploding": "bold red", "overflow": "bold red",
              "nan": "bold red", "stable": "bold green"}
    console.print()
    for profile in profiles:
        line = Text(summary_line(profile, trained))
        line.highlight_words([profile.summary["verdict"].upper()], styles.get(profile.summary["verdict"], ""))
        console.print(line)
    console.print()
    for profile in profiles:
        console.print(Text(explanation(profile, trained)))
    console.print(Text(f"Verdicts: relative norm at the farthest step below {VANISHING:g} vanishing, "
                       f"above {EXPLODING:g} exploding, else stable (the LSTM is judged by ||dL/dc||).",
                       style="dim"))


def table_title(settings: dict) -> str:
    source = f"checkpoint {settings['from']}" if settings.get("from") else "initialisation"
    return (f"Gradient flow at {source}: task {settings['task']}, gap {settings['gap']} "
            f"(T = {settings['sequence_length']}), batch {settings['batch']}, seed {settings['seed']}. "
            f"Rows: steps back from the loss step (0).")


def plot_title(settings: dict) -> str:
    source = f"checkpoint {settings['from']}" if settings.get("from") else "initialisation"
    return (f"Gradient flow at {source}: {settings['task']}, gap {settings['gap']}, "
            f"batch {settings['batch']}, seed {settings['seed']}")


def write(profiles: Sequence[GradientProfile], settings: dict, fmt: str, rows: str = "default") -> None:
    """Write the result in ``fmt`` to stdout."""
    if fmt == "json":
        write_json(json_document(profiles, settings))
    elif fmt == "csv":
        write_csv(csv_rows(profiles), fieldnames=CSV_FIELDS)
    else:
        from lstm_cli.render import console

        farthest = int(profiles[0].steps_back[-1])
        render_table(profiles, parse_rows(rows, farthest), table_title(settings), console(),
                     trained=bool(settings.get("from")))
