"""Figures of a training run and of a sweep (``train --plot``, ``sweep --plot``; the plot extra).

The training figure, from a run's result.json and metrics.jsonl:

    +-------------------------------------+---------+
    | heatmap: steps back (y) x training  | profile |  the carrier's relative norm (||dL/dh||
    | step (x), log colour                | at init |  for the RNN, the cell state's ||dL/dc||
    |                                     | and end |  for the LSTM), log axes
    +-------------------------------------+---------+
    | held-out metric x training step,    | colour  |
    | success threshold and chance marked | bar     |
    +-------------------------------------+---------+

The sweep figure, from a sweep's summary rows: the success rate against the
swept axis (the gap, normally), one line per model (and per setting of the
other axes), with a 95% Wilson score interval over the seeds; beside it the
median steps to success, when any run succeeded.

Each ``plot_*`` function takes the records, computes the series it draws with
the matching ``*_series`` function (plain lists, no matplotlib), draws exactly
those and returns them, so a test can check every plotted number against the
record it came from. matplotlib is imported only when a figure is drawn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from lstm_cli.errors import BadInput
from lstm_cli.plot import positive, check_target, require_matplotlib, save_figure

DPI = 100
TRAINING_SIZE = (10.0, 7.0)  # inches: 1000 x 700 pixels at DPI, 720 x 504 pt in an SVG
SWEEP_SIZE = (10.0, 4.5)  # 1000 x 450 pixels, 720 x 324 pt
Z_95 = 1.959963984540054  # the standard normal's 97.5% quantile: a two-sided 95% interval
CARRIER_NAMES = {"dh": "||dL/dh||", "dc": "||dL/dc|| (cell state)"}
FONT_SIZE = 11  # points: >= 10 pt at 100 dpi stays readable projected at 1280 px
# every figure's text, and text kept as text in an SVG (searchable, editable, much smaller)
FIGURE_STYLE = {"svg.fonttype": "none", "font.size": FONT_SIZE, "axes.titlesize": FONT_SIZE,
                "axes.labelsize": FONT_SIZE, "xtick.labelsize": FONT_SIZE, "ytick.labelsize": FONT_SIZE,
                "legend.fontsize": FONT_SIZE - 1, "figure.titlesize": FONT_SIZE + 1}
DODGE = 0.03  # how far apart the sweep figure draws the lines' points at one x (decades, or of the x range)
HEAT_RANGE = (1e-16, 10.0)  # the colour scale of every training heatmap (relative norms)


def _number(value: Any) -> float:
    """A number from a record (JSON keeps inf and nan as strings; None is a gap)."""
    return math.nan if value is None else float(value)


def log10(value: float) -> float:
    """log10 of a positive finite number, else nan (a gap in the line)."""
    return math.log10(value) if value > 0 and math.isfinite(value) else math.nan


# ---- the training figure ----

@dataclass
class TrainingSeries:
    """What the training figure draws, read from one run's records."""

    carrier: str  # "dh" or "dc": whose relative norm the heatmap and the profiles show
    steps: list[int]  # the training step of every evaluation (x)
    steps_back: list[int]  # (y)
    heat: list[list[float]]  # heat[i][k]: the carrier's relative norm k steps back at evaluation i
    profile_init: list[float]  # the first evaluation's row of ``heat``
    profile_end: list[float]  # the last evaluation's row
    metric: str  # "accuracy" or "mse"
    values: list[float]  # the held-out metric at every evaluation
    threshold: float  # the task's success threshold on the metric
    chance: float  # the metric of a model that knows nothing
    criterion: str  # e.g. "accuracy >= 0.99"


def training_series(result: dict, evaluations: Sequence[dict]) -> TrainingSeries:
    """The series of the training figure from result.json and the metrics.jsonl rows."""
    from lstm_cli.tasks import get_task

    gradient = result.get("gradient") or {}
    carrier = gradient.get("carrier")
    rows = [e for e in evaluations if carrier and e.get(f"{carrier}_rel")]
    if len(rows) < 1:
        raise BadInput(f"{result.get('run_dir', 'the run')}: no evaluation with a gradient profile to plot")
    metric = result["metric"]
    heat = [[_number(v) for v in e[f"{carrier}_rel"]] for e in rows]
    return TrainingSeries(
        carrier=carrier, steps=[int(e["step"]) for e in rows], steps_back=[int(k) for k in gradient["steps_back"]],
        heat=heat, profile_init=heat[0], profile_end=heat[-1], metric=metric,
        values=[_number(e.get(metric)) for e in rows], threshold=get_task(result["task"]).success,
        chance=_number(result["chance"]), criterion=result["criterion"])


def prepare(path: str | Path) -> Path:
    """Check ``--plot FILE`` before any work: a known suffix, an existing directory, matplotlib."""
    path = check_target(path)
    require_matplotlib()
    return path


def outcome_words(result: dict) -> str:
    """What became of a run, for a title: "learned in 100 steps (accuracy 1)", "did not learn in
    1500 steps (accuracy 0.23)", "diverged at step 208"."""
    metric = result.get("metric")
    value = _number(result.get(metric)) if metric else math.nan
    measured = f" ({metric} {value:.3g})" if metric and math.isfinite(value) else ""
    if result.get("status") == "diverged":
        return f"diverged at step {result.get('diverged_at', result.get('steps'))}"
    if result.get("status") not in (None, "completed"):
        return f"{result.get('status')} after {result.get('steps')} steps, did not learn{measured}"
    verb = "learned" if result.get("success") else "did not learn"
    return f"{verb} in {result.get('steps')} steps{measured}"


def training_title(result: dict) -> str:
    """e.g. "remember gap 50, lstm, seed 0: learned in 100 steps (accuracy 1)"."""
    return (f"{result.get('task')} gap {result.get('gap')}, {result.get('model')}, seed {result.get('seed')}: "
            f"{outcome_words(result)}")


def baseline_label(metric: str, chance: float) -> str:
    """What the baseline line is: chance for a classifier; for MSE the error of always answering the mean."""
    if metric == "mse":
        return f"always predict the mean (MSE {chance:.3g})"
    return f"chance {chance:.3g}"


def power_of_ten(value: float, _position=None) -> str:
    """A log-axis tick label as 10ⁿ (mathtext), the same on every panel."""
    return f"$10^{{{value:.3g}}}$"


def log_axis(axis, low: float, high: float, every: int = 4) -> None:
    """Decade ticks from ``low`` to ``high`` on a log axis, one label every ``every`` decades."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    decades = range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
    labelled = [10.0 ** k for k in decades if (k - decades[-1]) % every == 0]
    axis.set_major_locator(FixedLocator(labelled))
    axis.set_major_formatter(FuncFormatter(lambda v, _: power_of_ten(math.log10(v)) if v > 0 else ""))
    axis.set_minor_locator(NullLocator())


def plot_training(result: dict, evaluations: Sequence[dict], path: str | Path,
                  title: str | None = None) -> TrainingSeries:
    """Write the training figure of one run to ``path`` (.png, .svg or .pdf); returns its series."""
    path = check_target(path)
    series = training_series(result, evaluations)
    plt = require_matplotlib()
    with plt.rc_context(FIGURE_STYLE):
        fig = plt.figure(figsize=TRAINING_SIZE, dpi=DPI)
        # columns: heatmap, its colourbar, room for the colourbar's labels, the profiles
        grid = fig.add_gridspec(2, 4, width_ratios=(4, 0.12, 0.8, 1.3), height_ratios=(3, 1.4), hspace=0.45,
                                wspace=0.04, left=0.08, right=0.97)
        ax_heat = fig.add_subplot(grid[0, 0])
        ax_bar = fig.add_subplot(grid[0, 1])
        ax_profile = fig.add_subplot(grid[0, 3], sharey=ax_heat)
        ax_metric = fig.add_subplot(grid[1, 0], sharex=ax_heat)
        draw_training(fig, ax_heat, ax_bar, ax_profile, ax_metric, series)
        if title:
            fig.suptitle(title)
        save_figure(fig, plt, path, DPI)
    return series


def profile_range(rows: Sequence[Sequence[float]]) -> tuple[float, float]:
    """A profile axis: the heatmaps' range, widened to a decade beyond any value drawn outside it."""
    values = [v for row in rows for v in positive(row) if math.isfinite(v)]
    low = min([HEAT_RANGE[0], *values])  # within the range, every run's figure has the same axis
    high = max([HEAT_RANGE[1], *(10 * v for v in values if v > HEAT_RANGE[1])])
    return 10.0 ** math.floor(math.log10(low)), 10.0 ** math.ceil(math.log10(high))


def heat_norm():
    """The colour scale of every training heatmap: one log scale, so that figures compare."""
    from matplotlib.colors import LogNorm

    return LogNorm(vmin=HEAT_RANGE[0], vmax=HEAT_RANGE[1], clip=True)


def draw_training(fig, ax_heat, ax_bar, ax_profile, ax_metric, series: TrainingSeries, label_y: bool = True):
    """The training figure's panels (heatmap, colourbar beside it, profiles, metric) on given axes."""
    import numpy as np
    import matplotlib.pyplot as plt

    name = CARRIER_NAMES[series.carrier]
    short = name.split()[0]
    heat = np.array([positive(row) for row in series.heat]).T  # (steps back, evaluations)
    cmap = plt.get_cmap("magma").with_extremes(bad="#bbbbbb")
    mesh = ax_heat.pcolormesh(series.steps, series.steps_back, np.ma.masked_invalid(heat), cmap=cmap,
                              norm=heat_norm(), shading="nearest", rasterized=True)  # no seams in an SVG
    if label_y:
        ax_heat.set_ylabel("steps back from the answer step")
    ax_heat.set_xlabel("training step")
    ax_heat.set_title(f"{name} relative to the answer step"
                      + ("; grey: 0, inf or nan" if np.isfinite(heat).sum() < heat.size else ""))
    if ax_bar is not None:
        bar = fig.colorbar(mesh, cax=ax_bar, extend="both")
        bar.set_label(f"relative {short} (log scale)")
        log_axis(bar.ax.yaxis, *HEAT_RANGE)
    if ax_profile is not None:
        ax_profile.plot(positive(series.profile_init), series.steps_back, color="C0",
                        label=f"step {series.steps[0]}")
        ax_profile.plot(positive(series.profile_end), series.steps_back, color="C3",
                        label=f"step {series.steps[-1]}")
        ax_profile.set_xscale("log")
        low, high = profile_range([series.profile_init, series.profile_end])
        ax_profile.set_xlim(low, high)
        log_axis(ax_profile.xaxis, low, high, every=8)
        ax_profile.set_xlabel(f"relative {short}")
        ax_profile.tick_params(labelleft=False)
        ax_profile.legend(loc="best")
        ax_profile.grid(True, which="major", alpha=0.3)
    if ax_metric is not None:
        _draw_metric(ax_metric, series)
    return mesh


def _draw_metric(ax_metric, series: TrainingSeries) -> None:
    """The held-out metric against the training step, the success threshold and the baseline as lines."""
    scale = log10 if series.metric == "mse" else float
    ax_metric.plot(series.steps, [scale(v) for v in series.values], color="C2", marker=".",
                   label=f"held-out {series.metric}")
    metric_axis(ax_metric, series)
    ax_metric.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), borderaxespad=0)


def metric_axis(ax_metric, series: TrainingSeries) -> None:
    """The success threshold and the baseline lines, the axis labels and scale of a metric panel.
    An MSE spans decades (a diverged run reaches 1e296, beyond what a log axis can lay out): it is
    drawn as log10 on a linear axis, labelled in powers of ten."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    scale = log10 if series.metric == "mse" else float
    ax_metric.axhline(scale(series.threshold), color="black", linestyle="--", linewidth=1.0,
                      label=f"success: {series.criterion}")
    ax_metric.axhline(scale(series.chance), color="grey", linestyle=":", linewidth=1.2,
                      label=baseline_label(series.metric, series.chance))
    if series.metric == "mse":
        ax_metric.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=4))
        ax_metric.yaxis.set_major_formatter(FuncFormatter(power_of_ten))
        ax_metric.set_ylabel("held-out MSE")
    else:
        ax_metric.set_ylim(-0.03, 1.03)
        ax_metric.set_ylabel("held-out accuracy")
    ax_metric.set_xlabel("training step")
    ax_metric.legend(loc="best")
    ax_metric.grid(True, alpha=0.3)


# ---- the sweep figure ----

def wilson_interval(successes: int, runs: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a success rate (Wilson 1927): unlike p +- z sqrt(p(1-p)/n) it
    stays inside [0, 1] and is not empty at 0/n or n/n, the usual outcomes of a few seeds."""
    if runs <= 0:
        return math.nan, math.nan
    p = successes / runs
    denominator = 1 + z * z / runs
    centre = (p + z * z / (2 * runs)) / denominator
    half = z * math.sqrt(p * (1 - p) / runs + z * z / (4 * runs * runs)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class SweepLine:
    label: str  # the model (and the other axes' values), e.g. "lstm" or "rnn, clip=0"
    x: list[Any]  # values of the swept axis, as in the summary
    runs: list[int]
    succeeded: list[int]
    rate: list[float]  # succeeded / runs
    low: list[float]  # the 95% Wilson interval
    high: list[float]
    median_steps: list[float]  # median steps to success (nan where no run succeeded)


@dataclass
class SweepSeries:
    axis: str  # the swept axis on x
    lines: list[SweepLine] = field(default_factory=list)

    @property
    def has_steps(self) -> bool:
        return any(math.isfinite(v) for line in self.lines for v in line.median_steps)


def sweep_axis(axes: Sequence[str]) -> str:
    """The axis on x: the gap when it is swept, else the first axis that is not the model."""
    if "gap" in axes:
        return "gap"
    return next((a for a in axes if a != "model"), axes[0] if axes else "")


def sweep_series(summary: Sequence[dict], axes: Sequence[str]) -> SweepSeries:
    """One line per setting of the axes other than the x axis, from the sweep's summary rows
    (``sweep.aggregate``: one row per setting with ``runs``, ``succeeded`` and
    ``median_steps_to_success``)."""
    if not summary or not axes:
        raise BadInput("nothing to plot: the sweep has no axis besides the seed")
    axis = sweep_axis(axes)
    others = [a for a in axes if a != axis]
    series = SweepSeries(axis=axis)
    lines: dict[str, SweepLine] = {}
    for row in summary:
        label = ", ".join(str(row[a]) if a == "model" else f"{a}={row[a]}" for a in others) or "all runs"
        line = lines.setdefault(label, SweepLine(label, [], [], [], [], [], [], []))
        runs, succeeded = int(row["runs"]), int(row["succeeded"])
        low, high = wilson_interval(succeeded, runs)
        line.x.append(row[axis])
        line.runs.append(runs)
        line.succeeded.append(succeeded)
        line.rate.append(succeeded / runs if runs else math.nan)
        line.low.append(low)
        line.high.append(high)
        line.median_steps.append(_number(row.get("median_steps_to_success")))
    series.lines = list(lines.values())
    return series


def _positions(values: Sequence[Any]) -> tuple[list[float], list[str] | None]:
    """Numbers on a numeric axis, or 0, 1, 2 ... and the labels for a categorical one."""
    try:
        return [float(v) for v in values], None
    except (TypeError, ValueError):
        return list(map(float, range(len(values)))), [str(v) for v in values]


def plot_sweep(summary: Sequence[dict], axes: Sequence[str], path: str | Path,
               title: str | None = None) -> SweepSeries:
    """Write the sweep figure to ``path`` (.png, .svg or .pdf); returns its series."""
    path = check_target(path)
    series = sweep_series(summary, axes)
    plt = require_matplotlib()
    from matplotlib.ticker import NullLocator
    categories = list(dict.fromkeys(x for line in series.lines for x in line.x))
    numbers, labels = _positions(categories)
    where = dict(zip(categories, numbers))
    log_x = labels is None and min(numbers) > 0 and max(numbers) >= 10 * min(numbers)  # gaps 5 ... 100
    span = (max(numbers) - min(numbers)) or 1.0

    def dodge(x: float, n: int) -> float:
        """Each line's points a little apart, so intervals that overlap stay apart and readable."""
        k = DODGE * (n - (len(series.lines) - 1) / 2)
        return x * 10 ** k if log_x else x + k * (span if labels is None else 5)

    with plt.rc_context(FIGURE_STYLE):
        fig = plt.figure(figsize=SWEEP_SIZE, dpi=DPI)
        panels = fig.subplots(1, 2 if series.has_steps else 1, squeeze=False)[0]
        ax_rate = panels[0]
        for n, line in enumerate(series.lines):
            x = [dodge(where[v], n) for v in line.x]
            # the interval holds the rate; max(0, ...) drops the rounding of a rate at its interval's end
            below = [max(0.0, r - low) for r, low in zip(line.rate, line.low)]
            above = [max(0.0, high - r) for r, high in zip(line.rate, line.high)]
            ax_rate.errorbar(x, line.rate, yerr=[below, above], color=f"C{n}", marker="o", capsize=4,
                             linewidth=1.8, elinewidth=1.2, label=line.label)
            for xv, k, runs in zip(x, line.succeeded, line.runs):
                if k == 0:  # where the line sits on the axis: say that no run learned, and of how many
                    ax_rate.annotate(f"{k}/{runs}", (xv, 0.0), color=f"C{n}", textcoords="offset points",
                                     xytext=(7, 5), ha="left")
        seeds = sorted({r for line in series.lines for r in line.runs})
        ax_rate.set_ylim(-0.06, 1.08)
        ax_rate.set_ylabel("success rate (runs that learned)")
        ax_rate.set_title(f"bars: 95% Wilson interval over {'/'.join(map(str, seeds))} runs per point")
        ax_rate.legend(loc="best")
        if series.has_steps:
            _draw_steps(panels[1], series, where)
        for ax in panels:
            ax.set_xlabel(series.axis)
            ax.grid(True, alpha=0.3)
            if labels is not None:
                ax.set_xticks(numbers, labels)
            else:
                if log_x:
                    ax.set_xscale("log")
                ax.xaxis.set_minor_locator(NullLocator())
                ax.set_xticks(numbers, [f"{v:g}" for v in numbers])
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        save_figure(fig, plt, path, DPI)
    return series


def _draw_steps(ax_steps, series: SweepSeries, where: dict) -> None:
    """The sweep figure's second panel: the median steps to success, and where no run learned."""
    for n, line in enumerate(series.lines):
        x = [where[v] for v in line.x]
        ax_steps.plot(x, line.median_steps, color=f"C{n}", marker="o", label=line.label)
        failed = [xv for xv, k in zip(x, line.succeeded) if k == 0]
        if failed:  # where no run learned there is no median: marked at the bottom, not left blank
            ax_steps.plot(failed, [0] * len(failed), color=f"C{n}", marker="x", linestyle="none",
                          markersize=9, label=f"{line.label}: 0/{max(line.runs)} learned")
    ax_steps.set_ylabel("median steps to success")
    ax_steps.set_title("over the runs that learned")
    ax_steps.set_ylim(bottom=-0.03 * max(v for line in series.lines for v in line.median_steps if math.isfinite(v)))
    ax_steps.legend(loc="best")
