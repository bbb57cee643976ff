"""Rendering of ``lstm-demo inspect``: a heatmap with the steps across, the key numbers, the sentences.

One character per step and quantity. Gates and act' lie in [0, 1] and are drawn on that
fixed scale; the signed quantities (c, h, pre) on [-s, s] with 0 in the middle of the ramp,
where s is 1 for h and the row's largest |value| for c and pre (printed in the row's label),
so the sign shows without colour. On a terminal narrower than the sequence, the steps around
where the information enters and where the answer is asked for are kept and the others
collapse into "…"; in a pipe or a file every step is written.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Sequence

from lstm_cli.inspect import QUANTITY_NAMES, Inspection
from lstm_cli.plain import write_csv, write_json
from lstm_cli.render import console as make_console, natural_width, unicode_ok

FORMATS = ("table", "json", "csv")
RAMP_UNICODE = " ▁▂▃▄▅▆▇█"
RAMP_ASCII = " .:-=+*#%@"
SIGNED = {"c", "h", "pre"}
UNIT_SCALE = {"h"}  # signed, but bounded by 1
# colour per quantity (rich style names): gates warm, the memory cool
COLOURS = {"i": "green", "f": "yellow", "o": "magenta", "c": "cyan", "h": "blue", "z": "yellow", "r": "green",
           "pre": "cyan", "slope": "yellow"}


def write(inspection: Inspection, fmt: str) -> None:
    if fmt == "json":
        write_json(inspection.to_dict())
    elif fmt == "csv":
        write_csv(csv_rows(inspection))
    else:
        render(inspection)


def csv_rows(inspection: Inspection) -> list[dict]:
    """One row per unit and step: the step's symbol, then every quantity."""
    rows = []
    for unit in inspection.units:
        for t, symbol in enumerate(inspection.symbols):
            row = {"unit": unit.unit, "step": t, "symbol": symbol,
                   "role": role(inspection, t), "stored": float(unit.stored[t])}
            row.update((q, float(unit.values[q][t])) for q in inspection.quantities)
            rows.append(row)
    return rows


def role(inspection: Inspection, t: int) -> str:
    if t in inspection.answer_steps:
        return "answer"
    return "information" if t in inspection.info_steps else ""


def scale(quantity: str, values: Sequence[float]) -> float:
    """The value drawn as a full glyph (signed quantities: as the full glyph or blank)."""
    if quantity in SIGNED and quantity not in UNIT_SCALE:
        finite = [abs(v) for v in values if math.isfinite(v)]
        return max(finite, default=1.0) or 1.0
    return 1.0


def glyph(quantity: str, value: float, full: float, ramp: str) -> str:
    if not math.isfinite(value):
        return "?"
    level = (value / full + 1) / 2 if quantity in SIGNED else value / full
    return ramp[min(len(ramp) - 1, max(0, round(level * (len(ramp) - 1))))]


def window(steps: int, keep: Sequence[int], width: int) -> list[int | None]:
    """The steps shown in ``width`` columns: every one if they fit; else the steps nearest to those
    in ``keep``, with None where steps were left out (drawn as one "…" column)."""
    if steps <= width:
        return list(range(steps))
    keep = sorted({k for k in keep if 0 <= k < steps})

    def columns(chosen: set[int]) -> list[int | None]:
        out: list[int | None] = []
        for t in sorted(chosen):
            if out and out[-1] is not None and t != out[-1] + 1:
                out.append(None)
            elif not out and t != 0:
                out.append(None)
            out.append(t)
        if out and out[-1] is not None and out[-1] != steps - 1:
            out.append(None)
        return out

    by_distance = sorted(range(steps), key=lambda t: (min(abs(t - k) for k in keep) if keep else t, t))
    chosen: set[int] = set()
    for t in by_distance:
        if len(columns(chosen | {t})) > width:
            if chosen:
                break
            continue
        chosen.add(t)
    return columns(chosen)


def heatmap_lines(inspection: Inspection, width: int | None, ascii_only: bool):
    """(label, [(character, style)]) rows: symbols, a step ruler, then each unit's quantities."""
    ramp = RAMP_ASCII if ascii_only else RAMP_UNICODE
    ellipsis = "~" if ascii_only else "…"
    labels = {}
    for unit in inspection.units:
        for q in inspection.quantities:
            full = scale(q, unit.values[q])
            suffix = f" {'+/-' if ascii_only else '±'}{full:.2g}" if q in SIGNED and q not in UNIT_SCALE else ""
            labels[(unit.unit, q)] = f"unit {unit.unit} {q}{suffix}"
    label_width = max(len(text) for text in [*labels.values(), "step", "input"]) + 1
    shown = window(inspection.steps, [*inspection.info_steps, *inspection.answer_steps],
                   10**6 if width is None else max(8, width - label_width))
    symbols = [c.replace("·", ".") for c in inspection.symbols] if ascii_only else inspection.symbols
    rows = [("input", [(ellipsis, "dim") if t is None else
                       (symbols[t], "bold" if role(inspection, t) else "") for t in shown])]
    ruler = [" "] * len(shown)

    def free(start: int, end: int) -> bool:
        return 0 <= start and end <= len(ruler) and all(c == " " for c in ruler[max(0, start - 1):end + 1])

    # the answer steps first, each ending at its own column when it does not fit starting there
    marks = [k for k, t in enumerate(shown) if t in inspection.answer_steps]
    marks += [k for k, t in enumerate(shown) if t is not None and t % 10 == 0 and k not in marks]
    for k in marks:
        text = str(shown[k])
        for start in (k, k - len(text) + 1):
            if free(start, start + len(text)):
                ruler[start:start + len(text)] = list(text)
                break
    rows.append(("step", [(c, "dim") for c in ruler]))
    for unit in inspection.units:
        for q in inspection.quantities:
            full = scale(q, unit.values[q])
            rows.append((labels[(unit.unit, q)], [
                (ellipsis, "dim") if t is None else (glyph(q, float(unit.values[q][t]), full, ramp), COLOURS.get(q, ""))
                for t in shown]))
    return rows, label_width, any(t is None for t in shown)


def key_table(inspection: Inspection):
    """The numbers the sentences use: one row per number, one column per unit."""
    from rich import box
    from rich.table import Table

    names: list[str] = []
    for unit in inspection.units:
        names.extend(n for n in unit.facts if n not in names)
    table = Table(box=box.SIMPLE_HEAD, title="the numbers in the sentences", title_justify="left")
    table.add_column("number")
    for unit in inspection.units:
        table.add_column(f"unit {unit.unit}", justify="right")
    for name in names:
        table.add_row(name, *(unit.facts.get(name, "-") for unit in inspection.units))
    return table


def render(inspection: Inspection, console=None) -> None:
    from rich.text import Text

    console = console or make_console()
    ascii_only = not unicode_ok(console.file)
    to_pipe = console.file is sys.stdout and not os.environ.get("COLUMNS") and not sys.stdout.isatty()
    rows, label_width, cut = heatmap_lines(inspection, None if to_pipe else console.width, ascii_only)
    if to_pipe:
        console.width = max(console.width, label_width + len(rows[0][1]))
    answer = ", ".join(f"{t} (target {_value(tv)}, answer {_value(pv)})" for t, tv, pv in
                       zip(inspection.answer_steps, inspection.target, inspection.prediction))
    console.print(f"{inspection.source or inspection.label}: {inspection.label} on {inspection.task}, gap "
                  f"{inspection.gap}; held-out sequence {inspection.index}, {inspection.steps} steps; "
                  f"answer step {answer}", soft_wrap=to_pipe, markup=False)  # a path may hold [brackets]
    for label, cells in rows:
        line = Text(label.ljust(label_width))
        for character, style in cells:
            line.append(character, style=style or None)
        console.print(line, no_wrap=True, overflow="crop", soft_wrap=to_pipe)
    ramp = RAMP_ASCII if ascii_only else RAMP_UNICODE
    quantities = ", ".join(f"{q} {QUANTITY_NAMES[q]}" for q in inspection.quantities)
    console.print(f"one character per step: {quantities}; gates and act' from 0 \"{ramp[0]}\" to 1 "
                  f"\"{ramp[-1]}\"; c, h and pre from -scale \"{ramp[0]}\" through 0 \"{ramp[len(ramp) // 2]}\" "
                  f"to +scale \"{ramp[-1]}\" (h's scale is 1, the others' in their label)"
                  + ("; \"…\" steps left out: widen the terminal, or pipe for every step" if cut else ""),
                  style="dim", soft_wrap=to_pipe, markup=False)
    table = key_table(inspection)
    if to_pipe:
        console.width = max(console.width, natural_width(console, table))
    console.print(table)
    for sentence in [inspection.selection, *inspection.sentences]:
        console.print(sentence, soft_wrap=to_pipe, markup=False)


def _value(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


# ---- the figure (the plot extra) ----

INSPECT_FONT = 11  # points: >= 10 pt at 100 dpi reads when projected at 1280 px
Y_LABELS = {"i": "input gate i\n(0 to 1)", "f": "forget gate f\n(0 to 1)", "o": "output gate o\n(0 to 1)",
            "c": "cell state c", "h": "output h\n(-1 to 1)", "z": "update gate z\n(0 to 1)",
            "r": "reset gate r\n(0 to 1)", "pre": "pre-activation a", "slope": "act'(a)\n(0 to 1)"}


def inspection_title(inspection) -> str:
    outcome = ("learned" if inspection.learned else "did not learn") + (
        f" ({inspection.metric} {inspection.heldout_value:.3g})")
    return (f"{inspection.task} gap {inspection.gap}, {inspection.label}: {outcome}; "
            f"held-out sequence {inspection.index}")


def plot_inspection(inspection, path: str | Path):
    """Write the inspect figure: one panel per quantity (gates, cell state, output) against the step,
    one line per shown unit, the information and answer steps shaded. Returns the figure's axes."""
    from lstm_cli.plot import check_target, require_matplotlib, save_figure
    from lstm_cli.render.figures import DPI

    path = check_target(path)
    plt = require_matplotlib()
    quantities = inspection.quantities
    steps = list(range(inspection.steps))
    with plt.rc_context({"svg.fonttype": "none", "font.size": INSPECT_FONT}):
        fig, axes = plt.subplots(len(quantities), 1, sharex=True, dpi=DPI,
                                 figsize=(10.0, 1.0 + 1.45 * len(quantities)), squeeze=False)
        axes = axes[:, 0]
        for ax, q in zip(axes, quantities):
            for n, unit in enumerate(inspection.units):
                ax.plot(steps, unit.values[q], color=f"C{n}", linewidth=1.6, label=f"unit {unit.unit}")
            for t in inspection.info_steps:
                ax.axvspan(t - 0.5, t + 0.5, color="C2", alpha=0.18, linewidth=0)
            for t in inspection.answer_steps:
                ax.axvspan(t - 0.5, t + 0.5, color="C3", alpha=0.18, linewidth=0)
            if q in ("i", "f", "o", "z", "r", "slope"):
                ax.set_ylim(-0.05, 1.05)
            elif q == "h":
                ax.set_ylim(-1.05, 1.05)
            ax.set_ylabel(Y_LABELS.get(q, q), fontsize=INSPECT_FONT)
            ax.tick_params(labelsize=INSPECT_FONT)
            ax.grid(True, alpha=0.3)
        axes[0].legend(fontsize=INSPECT_FONT, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
        ticks = sorted({*inspection.answer_steps, *(t for t in steps if t % 10 == 0 and all(
            abs(t - a) > inspection.steps / 25 for a in inspection.answer_steps))})
        axes[-1].set_xticks(ticks)
        axes[-1].set_xlabel("time step (green: where the information enters, red: the answer step)",
                            fontsize=INSPECT_FONT)
        fig.suptitle(inspection_title(inspection), fontsize=INSPECT_FONT + 1)
        fig.tight_layout()
        save_figure(fig, plt, path, DPI)
    return list(axes)
