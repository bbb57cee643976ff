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

from lstm_cli import cells, explain
from lstm_cli.errors import BadInput
from lstm_cli.explain import sci
from lstm_cli.printed import fixed
from lstm_cli.probes import EXPLODING, VANISHING, GradientProfile
from lstm_cli.render import unicode_ok
BAR_WIDTH = 12  # characters of a log-scale bar
MIN_DECADES = 10  # a bar always spans at least this many orders of magnitude
_BLOCKS = " ▏▎▍▌▋▊▉█"  # eighths of a character cell
_ASCII_BLOCKS = " .:-=+*%#"  # the same eighths where the terminal cannot show blocks


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

def log_bar(value: float, low: int, high: int, width: int = BAR_WIDTH) -> str:
    """A bar whose length is log10(value) on the scale [low, high] decades (eighth-cell steps)."""
    if math.isnan(value):
        return "?"
    if value <= 0:
        return ""
    blocks = _BLOCKS if unicode_ok() else _ASCII_BLOCKS
    if math.isinf(value):
        return blocks[-1] * width
    fraction = (math.log10(value) - low) / (high - low)
    eighths = round(min(max(fraction, 0.0), 1.0) * width * 8)
    full, part = divmod(eighths, 8)
    return (blocks[-1] * full + (blocks[part] if part else "")).rstrip()


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
    """The init that produced the profile: W_hh init and scale, and the cell's own numbers
    (the forget bias, the mean update gate, sigma_max...)."""
    m = profile.model
    before, after = cells.get(m["kind"]).init_words(profile)
    words = [*before, f"{m['init']} W_hh", f"recurrent scale {m['recurrent_scale']:g}", *after]
    words.append(f"H {m['hidden']}")
    return ", ".join(words)


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
    """What the numbers mean (``lstm_cli.explain``), in one paragraph per model."""
    return " ".join(explain.sentences(profile, trained))


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
              "dw", "dw_rel", "forget", "forget_product", "h_abs", "bound", "decades_activation",
              "decades_recurrent", "decades_total", "belt", "belt_rel", "gates", "gates_rel"]


# ---- the table ----

def _columns(profile: GradientProfile, level: int) -> list[tuple[str, list[str] | None]]:
    """(header, cells by step) of one model's columns, the bar's cells None; level 0 shows
    everything, each higher level less detail (never the carrier's relative norm)."""
    bar_header = "log " + profile.carrier  # the bar shows the carrier, the norm the verdict reads
    cell = cells.get(profile.model["kind"])
    product = f"prod {cell.direct_gate}"
    act_name, recurrent_name = split_names(profile)
    cols = [("||dL/dh||", [sci(v) for v in profile.dh.mean]), ("dh rel", [sci(v) for v in profile.dh.rel])]
    if profile.dc is not None:
        cols += [("||dL/dc||", [sci(v) for v in profile.dc.mean]), ("dc rel", [sci(v) for v in profile.dc.rel]),
                 (bar_header, None)]
    elif profile.forget_product is not None:  # a belt along h (the GRU's, gate z)
        cols += [(bar_header, None), (product, [sci(v) for v in profile.forget_product])]
    else:
        cols += [(bar_header, None), ("bound", [sci(v) for v in profile.bound])]
    if profile.decades_total is not None:
        cols += [(act_name, [_decades(v) for v in profile.decades_activation]),
                 (recurrent_name, [_decades(v) for v in profile.decades_recurrent])]
    if profile.belt_rel is not None:
        cols += [("belt", [sci(v) for v in profile.belt_rel]), ("gates", [sci(v) for v in profile.gates_rel])]
    return [c for c in cols if c[0] not in _hidden(profile, level)]


def _hidden(profile: GradientProfile, level: int) -> set[str]:
    """The headers of ``_columns`` that detail level ``level`` hides."""
    act_name, recurrent_name = split_names(profile)
    hidden = set()
    if level >= 1:
        hidden |= {"||dL/dh||", "||dL/dc||"}
    if level >= 2:
        hidden |= {"bound", "gates", f"prod {cells.get(profile.model['kind']).direct_gate}"}
        hidden |= {"dh rel"} if profile.dc is not None else set()
    if level >= 3:
        hidden |= {"log " + profile.carrier, "belt", recurrent_name, act_name}
    return hidden


def split_names(profile: GradientProfile) -> tuple[str, str]:
    """The names of the two causes of a split cell's profile (its columns), e.g. ("tanh'", "W_hh")."""
    names = cells.get(profile.model["kind"]).split_names or ("{activation}'", "")
    return tuple(name.format(activation=profile.model.get("activation", "tanh")) for name in names)


def _decades(value: float) -> str:
    """A share of the split in decades, signed, one decimal (0.0 unsigned: noise has no sign); empty
    where the split does not apply."""
    if math.isnan(value):
        return ""
    return fixed(value, 1, signed=True) if math.isfinite(value) else ("-inf" if value < 0 else "inf")


def wrap_label(label: str, width: int = 10) -> list[str]:
    """A model label in lines of about ``width``, broken after ':', ',', '=' or '_'."""
    lines = [""]
    for piece in re.split(r"(?<=[:,=_])", label):
        if lines[-1] and len(lines[-1]) + len(piece) > width:
            lines.append("")
        lines[-1] += piece
    return lines


def table_columns(profiles, steps, low, high):
    """The table's columns and rows for the table layer: every model's columns at level 0, each
    hidden on a narrow terminal at the level ``_columns`` drops it (the declared order: norms,
    then bound/gates/prod z, then bars and the split)."""
    from lstm_cli.render.table import Column

    columns = [Column("steps\nback")]
    cells = [[str(k)] for k in steps]
    for profile in profiles:
        group = "\n".join(wrap_label(profile.label))
        hidden = [_hidden(profile, level) for level in range(4)]
        for header, values in _columns(profile, 0):
            hide = next((level for level in (1, 2, 3) if header in hidden[level]), 0)
            if values is None:
                columns.append(Column(header, justify="left", hide=hide, group=group, width=BAR_WIDTH))
                values = [log_bar(float(v), low, high, BAR_WIDTH) for v in profile.carrier_rel]
            else:
                columns.append(Column(header, hide=hide, group=group))
            for row, k in zip(cells, steps):
                row.append(values[k])
    return columns, cells


def render_table(profiles: Sequence[GradientProfile], steps: Sequence[int], title: str, console,
                 trained: bool = False) -> None:
    """The table, then one summary line per model, then the explanation, on ``console``."""
    from rich.text import Text

    from lstm_cli.render.table import render, say

    low, high = bar_scale([float(v) for p in profiles for v in p.carrier_rel])
    columns, cells = table_columns(profiles, steps, low, high)
    layout = render(columns, cells, console, title=title)
    for line in legend(profiles, low, high, layout.level):
        say(console, line, "dim")
    styles = {"vanishing": "bold yellow", "exploding": "bold red", "overflow": "bold red",
              "nan": "bold red", "stable": "bold green"}
    console.print()
    for profile in profiles:
        line = Text(summary_line(profile, trained))
        line.highlight_words([profile.summary["verdict"].upper()], styles.get(profile.summary["verdict"], ""))
        say(console, line)
    console.print()
    for profile in profiles:
        say(console, explanation(profile, trained))


def legend(profiles: Sequence[GradientProfile], low: int, high: int, level: int = 0) -> list[str]:
    """The lines that define the table's columns: only those shown at this level of detail
    (see ``_columns``), only for the kinds of model shown."""
    rnns = [p for p in profiles if p.decades_total is not None]
    belts = [p for p in profiles if p.belt_rel is not None]
    shown = [cells.get(kind) for kind in cells.NAMES if any(p.model["kind"] == kind for p in profiles)]
    carriers = [cell.carrier_words for cell in shown if cell.carrier_words]
    lines = []
    if level < 3:
        lines.append(f"log: a bar of log10 of the relative norm, empty at 1e{low:+03d}, full at 1e{high:+03d}"
                     + (f" ({', '.join(carriers)})" if carriers else ""))
    split_cells = [cell for cell in shown if cell.split_names]
    if rnns and level < 3:
        acts = "/".join(sorted({split_names(p)[0] for p in rnns}))
        recurrent = "/".join(dict.fromkeys(split_names(p)[1] for p in rnns))
        starts = sorted({p.summary.get("split_from", 0) for p in rnns})
        start = ("the loss step" if starts == [0] else
                 f"the earliest answer step ({', '.join(map(str, starts))} steps back; the head adds gradient "
                 f"at the steps before it, which are not split)")
        lines.append(f"{acts}, {recurrent}: the split of dh rel into its causes, decades summed from {start}, "
                     f"batch mean per sequence (- lost, + gained): log10 ||u_t||/||dh_t|| for the activation, "
                     f"u_t = act'(a_t) * dh_t, and {', '.join(cell.split_legend for cell in split_cells)}; their "
                     f"sum is the decades lost per sequence that the text below quotes.")
    if rnns and level < 2:
        lines += [cell.bound_legend for cell in split_cells]
    if belts and level < 3:
        lines += [cell.belt_legend for cell in shown if cell.direct_gate]
    judged = " (the LSTM is judged by ||dL/dc||)" if any(cell.has_cell_state for cell in shown) else ""
    lines.append(f"Verdicts: relative norm at the farthest step below {VANISHING:g} vanishing, above "
                 f"{EXPLODING:g} exploding, else stable{judged}.")
    return lines


def table_title(settings: dict) -> str:
    source = f"checkpoint {settings['from']}" if settings.get("from") else "initialisation"
    return (f"Gradient flow at {source}: task {settings['task']}, gap {settings['gap']} "
            f"(T = {settings['sequence_length']}), batch {settings['batch']}, seed {settings['seed']}. "
            f"Rows: steps back from the loss step (0).")


def plot_title(settings: dict) -> str:
    source = f"checkpoint {settings['from']}" if settings.get("from") else "initialisation"
    return (f"Gradient flow at {source}: {settings['task']}, gap {settings['gap']}, "
            f"batch {settings['batch']}, seed {settings['seed']}")


def write(profiles: Sequence[GradientProfile], settings: dict, fmt, rows: str = "default") -> None:
    """Write the result in ``fmt`` (a ``config.Format``) to stdout: json the document, jsonl and csv
    one row per (model, step back), table the rows ``rows`` picks."""
    from lstm_cli.render import write_rows

    def table() -> None:
        from lstm_cli.render import console

        farthest = int(profiles[0].steps_back[-1])
        render_table(profiles, parse_rows(rows, farthest), table_title(settings), console(),
                     trained=bool(settings.get("from")))

    write_rows(fmt, csv_rows(profiles), table, fields=CSV_FIELDS, document=json_document(profiles, settings))
