"""Rendering of a training run: the outcome, the gradient profile before and after, a heatmap, progress.

Everything here reads the result record (result.json) and the evaluations
(metrics.jsonl) of ``lstm_cli.rundir``, so the table shows exactly the numbers a
program gets from ``--format json``. The progress bar goes to stderr and only
when stderr is a terminal.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from rich.console import Console, Group
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.text import Text

from lstm_cli import cells
from lstm_cli.explain import training_sentence
from lstm_cli.printed import sci, significant
from lstm_cli.render import unicode_ok
from lstm_cli.render.table import Column
from lstm_cli.probes import VANISHING

# log10 of a relative gradient norm -> colour, from vanished (dark) to exploding (pale)
_PALETTE = [  # (lower edge of log10, colour): dark = vanished, pale = exploding
    (-math.inf, "#000004"), (-12, "#1b0c41"), (-9, "#3b0f70"), (-6, "#641a80"), (-3, "#8c2981"),
    (-2, "#b73779"), (-1, "#de4968"), (0, "#f7705c"), (1, "#fe9f6d"), (3, "#fcfdbf"),
]
_NAN = "grey50"
# Below 256 colours the palette collapses (xterm's 16 colours show 0 and 1e-12 both as black,
# 1e-3 and 0.01 as one magenta), so the heatmap draws one glyph per decade instead.
RAMP = " .:-=+*#%@"  # the top decade present gets "@", each decade below the glyph before it
ZERO_GLYPH, INF_GLYPH, NAN_GLYPH = "_", "!", "?"
COLOUR_SYSTEMS = ("256", "truecolor")  # rich's names of the colour systems the palette needs
BAR_FLOOR = 1e-16  # a profile bar is empty at this relative norm


def _num(value: Any) -> float:
    """A number from a record (JSON stores non-finite floats as strings)."""
    if value is None:
        return math.nan
    return float(value)


def fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    v = _num(value) + 0.0  # -0.0 prints as 0
    if math.isnan(v) or math.isinf(v):
        return str(v)
    if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e4):
        return f"{v:.2e}"
    return f"{v:.{digits}g}"


def _log10(value: Any) -> float:
    """log10 of a relative norm (-inf for 0, inf for inf, nan for nan or a negative number)."""
    v = _num(value)
    if math.isnan(v) or v < 0:
        return math.nan
    if v == 0 or math.isinf(v):
        return -math.inf if v == 0 else math.inf
    level = math.log10(v)
    # a relative norm of exactly 1 (the answer step) may round to 0.999...: count it as 1
    return 0.0 if abs(level) < 1e-9 else level


def _colour(value: Any) -> str:
    """The colour of a relative norm on the log scale of ``_PALETTE``."""
    level = _log10(value)
    if math.isnan(level):
        return _NAN
    return [tint for edge, tint in _PALETTE if level >= edge][-1]


class GlyphScale:
    """One glyph of ``RAMP`` per decade, the top one for the highest decade of the values shown
    (at least the answer step's 1); everything ten or more decades below it is " "."""

    def __init__(self, values: Sequence[Any]):
        decades = [math.floor(level) for level in map(_log10, values) if math.isfinite(level)]
        self.top = max([0, *decades])

    def glyph(self, value: Any) -> str:
        level = _log10(value)
        if math.isnan(level):
            return NAN_GLYPH
        if level == -math.inf:
            return ZERO_GLYPH
        if level == math.inf:
            return INF_GLYPH
        return RAMP[max(0, len(RAMP) - 1 - (self.top - math.floor(level)))]

    def legend(self) -> list[str]:
        """What each glyph means, in two lines: the ramp's bottom and the special values, then
        each glyph with the decade it starts at (``.1e-8 :1e-7 ... @1``)."""
        lowest = self.top - len(RAMP) + 2  # the decade of RAMP[1]
        return [f'one glyph per decade, from: "{RAMP[0]}" below {_decade(lowest)}, '
                f'"{ZERO_GLYPH}" 0, "{INF_GLYPH}" inf, "{NAN_GLYPH}" nan,',
                " ".join(f"{glyph}{_decade(lowest + i)}" for i, glyph in enumerate(RAMP[1:]))]


def _decade(k: float) -> str:
    """10^k as a short label: 0.01 ... 100, else 1e-12."""
    return f"{10.0 ** k:g}" if -3 < k < 3 else f"1e{k:g}"


OUTCOME_COLUMNS = [Column("", justify="left"), Column("", justify="left", fold=True)]


def outcome_table(result: dict) -> tuple[str, list[list]]:
    """(title, rows) of the outcome against chance and the success criterion, and the gradient at
    the first input, for the table layer with ``OUTCOME_COLUMNS``."""
    metric = result["metric"]
    value = result.get(metric)
    if result["status"] == "diverged":
        verdict = Text(f"DIVERGED at step {result.get('diverged_at')}", style="bold red")
    elif result["status"] == "interrupted":
        verdict = Text("INTERRUPTED", style="bold yellow")
    elif result["success"]:
        verdict = Text(f"SUCCESS: {result['criterion']} reached", style="bold green")
    else:
        verdict = Text(f"FAILED: {result['criterion']} not reached", style="bold red")
    title = f"train {result['task']} gap {result['gap']}, {result['model']}, seed {result['seed']}"
    rows: list[list] = []

    def add(label: str, value) -> None:
        rows.append([Text(label, style="bold"), value])

    add("outcome", verdict)
    better = "higher" if metric == "accuracy" else "lower"
    add(f"held-out {metric}", f"{fmt(value, 4)}  (chance {fmt(result['chance'], 3)}, "
                                        f"success {result['criterion']}; {better} is better)")
    add("held-out loss", fmt(result.get("heldout_loss"), 4))
    if result["status"] == "diverged":  # one step count: result.json's steps (= diverged_at)
        steps = f"{result['steps']} of {result['max_steps']}  (diverged at this step)"
    else:
        steps = f"{result['steps']} of {result['max_steps']}" + (
            "  (stopped early on success)" if result["success"] and result["steps"] < result["max_steps"] else "")
    add("steps", steps)
    add("wall time", f"{_num(result['wall_time']):.1f} s")
    grad = result.get("gradient")
    if grad:
        k = grad["steps_back_first_step"]
        add(f"||dL/dh|| {k} steps back", f"{sci(grad['dh_ratio_first_step_before'])} at init -> "
                      f"{sci(grad['dh_ratio_first_step'])} at step {result['evaluated_at']} (relative to the answer step)")
        if grad.get("dc_ratio_first_step") is not None:
            add(f"||dL/dc|| {k} steps back", f"{sci(grad['dc_ratio_first_step_before'])} at init -> "
                          f"{sci(grad['dc_ratio_first_step'])} at step {result['evaluated_at']}")
    clipping = clipping_text(result.get("clipping"))
    if clipping:
        add("gradient clipping", clipping)
    why = explanation(result)
    if why:
        add("why", why)
    add("run record", result["run_dir"])
    return title, rows


def clipping_text(clipping: dict | None) -> str | None:
    """How often clipping (Pascanu et al. 2013) fired and the pre-clip global gradient norms."""
    if not clipping or not clipping.get("steps"):
        return None
    norms = f"pre-clip ||g|| median {sci(clipping['grad_norm_median'])}, max {sci(clipping['grad_norm_max'])}"
    if not _num(clipping["clip"]) > 0:
        return f"off (clip 0); {norms} over {clipping['steps']} updates"
    return (f"fired on {clipping['clipped_steps']} of {clipping['steps']} updates "
            f"({100 * _num(clipping['clipped_fraction']):.3g}%) at clip {fmt(clipping['clip'])}; {norms}")


def explanation(result: dict) -> str | None:
    """One sentence on why a run did not succeed, read from its gradient at the first step."""
    grad = result.get("gradient")
    if result["status"] == "diverged":
        return ". ".join(filter(None, [divergence_note(result), collapse_note(result)]))
    if result["success"] or result["status"] != "completed" or not grad:
        return None
    carrier = grad["carrier"]
    ratio = _num(grad[f"{carrier}_ratio_first_step"])
    name = "||dL/dc||" if carrier == "dc" else "||dL/dh||"
    k = grad["steps_back_first_step"]
    shown = significant(ratio, 2)  # as sci prints it: a word changes only with a printed digit
    if shown < VANISHING:
        return " ".join(filter(None, [
            f"{name} {k} steps back is {sci(ratio)} of its size at the answer step: the gradient does not reach "
            f"the first input, so the long dependency is not learned (Bengio et al. 1994); compare --model lstm.",
            collapse_note(result)]))
    if shown > 1e3 or not math.isfinite(ratio):
        return f"{name} {k} steps back is {sci(ratio)} times its size at the answer step: exploding gradients"
    return (f"the gradient still reaches the first step ({name} ratio {sci(ratio)}); "
            f"the budget of {result['max_steps']} steps may be too short: try --steps")


def collapse_note(result: dict) -> str | None:
    """Why a trained RNN's gradient at the first input is what it is: the split of its last probe
    next to the one at init (saturation shows as the activation's share), when it vanished."""
    grad = result.get("gradient") or {}
    if grad.get("decades") is None or not significant(_num(grad.get("dh_ratio_first_step")), 2) < VANISHING:
        return None
    activation = result["model"].partition("activation=")[2].split(",")[0] or "tanh"
    recurrent = cells.get(result["model"].partition(":")[0]).split_names[1]

    def numbers(split):
        return None if split is None else {k: _num(v) for k, v in split.items()}

    slopes = [None if grad.get(k) is None else _num(grad[k]) for k in ("activation_slope_before", "activation_slope")]
    return training_sentence(activation, result.get("evaluated_at"), numbers(grad.get("decades_before")),
                             numbers(grad["decades"]), *slopes, recurrent=recurrent)


def _rows_to_show(n: int, limit: int = 14) -> list[int]:
    """Steps back to show: 0, 1, 2, 5, 10, then evenly spaced round numbers, and always the farthest."""
    if n <= limit:
        return list(range(n))
    picks = [k for k in (0, 1, 2, 5, 10) if k < n - 1]
    spacing = next(s for s in (10, 20, 25, 50, 100, 200, 250, 500, 1000, 10 ** 9)
                   if (n - 1) // s <= limit - len(picks) - 1)
    picks += [k for k in range(spacing, n - 1, spacing) if k > picks[-1]]
    return picks + [n - 1]


def _bar(value: Any, floor: float = BAR_FLOOR, ceiling: float = 1.0, width: int = 8) -> Text:
    """A log-scale bar: empty at ``floor``, full at ``ceiling`` (1, or above 1 when a norm grew)."""
    v = _num(value)
    if not math.isfinite(v):
        return Text(str(v).ljust(width), style=_NAN if math.isnan(v) else "bold red")
    low, high = math.log10(floor), math.log10(ceiling)
    fill = 0 if v <= 0 else (min(max(math.log10(v), low), high) - low) / (high - low)
    cells = max(0, min(width, round(fill * width)))
    full, empty = ("█", "·") if unicode_ok() else ("#", ".")
    return Text(full * cells + empty * (width - cells), style=_colour(v))


def bar_ceiling(values: Sequence[Any]) -> float:
    """1, or the power of ten at or above the largest finite value: bars keep growing above 1."""
    finite = [_num(v) for v in values if v is not None and math.isfinite(_num(v)) and _num(v) > 0]
    return 10.0 ** max(0, math.ceil(math.log10(max(finite)))) if finite else 1.0


def profile_table(result: dict) -> tuple[list[Column], list[list]] | None:
    """Relative ||dL/dh_t|| (and ||dL/dc_t||) per step back, at init and at the end, side by side:
    (columns, rows) for the table layer. A narrow terminal hides the bars first, then the values
    at init; the values at the end always show."""
    grad = result.get("gradient")
    if not grad:
        return None
    columns = [Column("steps\nback")]
    names = [("dh", "||dL/dh||")] + ([("dc", "||dL/dc||")] if grad.get("dc_rel") else [])
    whens = (("_before", "at init", 2), ("", f"at step {result['evaluated_at']}", 0))
    for _, label in names:
        for _, when, hide in whens:
            columns += [Column("log", justify="left", hide=1, group=f"{label}\n{when}"),
                        Column("rel", hide=hide, group=f"{label}\n{when}")]
    steps_back = grad["steps_back"]
    ceiling = profile_ceiling(grad)
    rows = []
    for i in _rows_to_show(len(steps_back)):
        cells: list[Any] = [str(steps_back[i])]
        for key, _ in names:
            for when, _, _ in whens:
                value = grad[f"{key}_rel{when}"][i]
                cells += [_bar(value, ceiling=ceiling), sci(value)]
        rows.append(cells)
    return columns, rows


def profile_ceiling(grad: dict) -> float:
    return bar_ceiling([v for key in ("dh_rel_before", "dh_rel", "dc_rel_before", "dc_rel")
                        for v in (grad.get(key) or [])])


def heatmap(result: dict, evaluations: Sequence[dict], max_columns: int = 60, max_rows: int = 12,
            colour: bool = True):
    """Steps back (rows) x training step (columns) of relative ||dL/dh||, on a log colour scale.

    Without ``colour`` (fewer than 256 colours, NO_COLOR, not a terminal) each cell is a glyph
    of its decade instead (``GlyphScale``), and the legend says what each glyph means.
    """
    rows_with = [e for e in evaluations if e.get("dh_rel")]
    if len(rows_with) < 2:
        return None
    if len(rows_with) > max_columns:
        pick = sorted({round(i * (len(rows_with) - 1) / (max_columns - 1)) for i in range(max_columns)})
        rows_with = [rows_with[i] for i in pick]
    n = len(rows_with[0]["dh_rel"])
    width = max(len(str(n - 1)), 4)
    shown = list(reversed(_rows_to_show(n, max_rows)))
    glyphs = GlyphScale([e["dh_rel"][k] for e in rows_with for k in shown])
    cell = "█" if unicode_ok() else "#"
    lines = [Text("||dL/dh|| relative to the answer step: steps back (rows) x training step (columns, one per "
                  "evaluation), log scale", style="bold")]
    for k in shown:
        line = Text(str(k).rjust(width) + " ")
        for e in rows_with:
            value = e["dh_rel"][k]
            line.append(cell, style=_colour(value)) if colour else line.append(glyphs.glyph(value))
        lines.append(line)
    first, last = f"step {rows_with[0]['step']}", f"step {rows_with[-1]['step']}"
    pad = max(1, len(rows_with) - len(first) - len(last))
    lines.append(Text(" " * (width + 1) + first + " " * pad + last, style="dim"))
    if colour:
        legend = Text(" " * (width + 1) + "from ", style="dim")
        for edge, tint in [*_PALETTE, (math.nan, _NAN)]:
            legend.append(cell, style=tint)
            legend.append(("nan" if math.isnan(edge) else "0" if edge == -math.inf else _decade(edge)) + " ")
        lines.append(legend)
    else:
        lines += [Text(" " * (width + 1) + line, style="dim") for line in glyphs.legend()]
    return Group(*lines)


def divergence_note(result: dict) -> str:
    norm = result.get("diverged_grad_norm")
    what = (f"the loss became {result.get('diverged_loss')}" if norm is None
            else f"the gradient norm became {norm} (loss {fmt(result.get('diverged_loss'))})")
    return (f"training diverged: {what} at step {result.get('diverged_at')}: exploding gradients; "
            f"try --clip 1 (clipping by global norm) or a smaller --lr")


def render_result(result: dict, evaluations: Sequence[dict], console: Console | None = None) -> None:
    """The tables for people (through the table layer): outcome, profiles before and after, heatmap."""
    from lstm_cli.render import console as make_console
    from lstm_cli.render.table import render

    out = console or make_console()
    title, rows = outcome_table(result)
    render(OUTCOME_COLUMNS, rows, out, title=title)
    table = profile_table(result)
    if table is not None:
        ceiling = profile_ceiling(result["gradient"])
        heading = (f"Gradient reaching each step back, relative to the answer step, before and after "
                   f"training (bars: log scale, empty at {BAR_FLOOR:.0e}, full at {ceiling:g}"
                   + (f", 1 at {math.log10(1 / BAR_FLOOR) / math.log10(ceiling / BAR_FLOOR):.0%} of the bar"
                      if ceiling > 1 else "") + ")")
        out.print()
        out.print(Text(heading, style="bold"))
        render(*table, out)
    hm = heatmap(result, evaluations, colour=out.color_system in COLOUR_SYSTEMS)
    for line in hm.renderables if hm is not None else ():
        out.print(line)


def write(result: dict, fmt, evaluations) -> None:
    """``lstm-demo train``'s output in ``fmt`` (a ``config.Format``): the table, the result record
    (json; jsonl on one line) or its one-value fields as one csv row; ``evaluations()`` reads the
    evaluations the table's heatmap needs."""
    from lstm_cli.render import write_rows

    row = {key: value for key, value in result.items() if not isinstance(value, (dict, list))}
    write_rows(fmt, [row], lambda: render_result(result, evaluations()), document=result, lines=[result])


class TrainProgress:
    """A rich progress bar on stderr, fed with the training loop's events; hidden if not a TTY or quiet."""

    def __init__(self, quiet: bool = False, console: Console | None = None):
        from lstm_cli.render import console as make_console

        self.console = console or make_console(stderr=True)
        self.enabled = not quiet and self.console.is_terminal
        self.progress: Progress | None = None
        self.task_id = None
        self.fields = {"loss": "-", "metric": "-", "ratio": "-"}

    def __enter__(self) -> TrainProgress:
        if self.enabled:
            self.progress = Progress(
                TextColumn("[bold]train"), BarColumn(bar_width=10), MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]}  held-out {task.fields[metric]}  "
                           "dh first/last {task.fields[ratio]}"),
                console=self.console, transient=True)
            self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.progress is not None:
            self.progress.__exit__(*exc)

    def __call__(self, event: Any) -> None:
        if self.progress is None:
            return
        from lstm_cli import train

        if isinstance(event, train.Started):
            self.task_id = self.progress.add_task("train", total=event.total_steps, **self.fields)
        elif isinstance(event, train.Step):
            self.fields["loss"] = f"{event.loss:.3f}"
            self.progress.update(self.task_id, completed=event.step, **self.fields)
        elif isinstance(event, train.Evaluation):
            self.fields["metric"] = f"{'acc' if event.metric == 'accuracy' else event.metric} {event.value:.3f}"
            self.fields["ratio"] = fmt(event.dh_ratio)
            self.progress.update(self.task_id, **self.fields)
