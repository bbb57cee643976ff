"""A few runs side by side (``run SCENARIO --plot`` for a scenario of 2-4 runs of one seed): each
run's training heatmap on the one shared colour scale with the colourbar beside the last, then
every run's gradient profiles and learning curves; not a success rate, which a few runs cannot
estimate."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

from lstm_cli.errors import BadInput
from lstm_cli.render import figures as base

COMPARE_MAX = 4  # runs drawn side by side; more runs are summarised as a success rate


def plot_comparison(results: Sequence[dict], evaluations: Sequence[Sequence[dict]], labels: Sequence[str],
                    path: str | Path, title: str | None = None) -> list[base.TrainingSeries]:
    """A few runs side by side (``run SCENARIO --plot`` for a scenario of 2-4 runs): each run's
    heatmap on the one shared colour scale, its colourbar beside the last; below, every run's
    gradient profile at its last evaluation and every run's learning curve. Returns the series."""
    path = base.check_target(path)
    if not 1 <= len(results) <= COMPARE_MAX:
        raise BadInput(f"--plot draws {COMPARE_MAX} runs side by side at most, got {len(results)}")
    series = [base.training_series(result, rows) for result, rows in zip(results, evaluations)]
    plt = base.require_matplotlib()
    n = len(series)
    with plt.rc_context(base.FIGURE_STYLE):
        fig = plt.figure(figsize=(5.0 * n + 1.5, 8.5), dpi=base.DPI)
        grid = fig.add_gridspec(2, n, height_ratios=(3, 2.2), hspace=0.5, wspace=0.2, left=0.08, right=0.88,
                                bottom=0.2)
        heat_axes = []
        for k, (one, result, label) in enumerate(zip(series, results, labels)):
            ax = fig.add_subplot(grid[0, k], sharey=heat_axes[0] if heat_axes else None)
            # the one colourbar (the scale is shared) right beside the last heatmap
            bar = ax.inset_axes([1.03, 0.0, 0.035, 1.0]) if k == n - 1 else None
            base.draw_training(fig, ax, bar, None, None, one, label_y=k == 0)
            grey = "; grey: 0, inf or nan" if any(not (v > 0 and math.isfinite(v)) for r in one.heat for v in r) else ""
            ax.set_title(f"{label}: {base.outcome_words(result)}\n{base.CARRIER_NAMES[one.carrier]} relative to the answer step"
                         + grey)
            heat_axes.append(ax)
        bottom = grid[1, :n].subgridspec(1, 2, wspace=0.3)
        ax_profile, ax_metric = fig.add_subplot(bottom[0, 0]), fig.add_subplot(bottom[0, 1])
        drawn = []
        for k, (one, label) in enumerate(zip(series, labels)):
            # the last evaluation with a finite profile (a diverged run's last ones hold inf or nan)
            row = next((i for i in range(len(one.heat) - 1, -1, -1) if all(
                math.isfinite(v) for v in one.heat[i])), len(one.heat) - 1)
            drawn += [one.heat[0], one.heat[row]]
            ax_profile.plot(one.steps_back, base.positive(one.heat[0]), color=f"C{k}", linestyle="--", linewidth=1.2,
                            label=f"{label}, step {one.steps[0]}")
            zeros = sum(v == 0 for v in one.heat[row])
            ax_profile.plot(one.steps_back, base.positive(one.heat[row]), color=f"C{k}", linewidth=2.0,
                            label=f"{label}, step {one.steps[row]}" + (
                                f": 0 at {zeros} of {len(one.heat[row])} steps back (off the log axis)" if zeros else ""))
            scale = base.log10 if one.metric == "mse" else float
            ax_metric.plot(one.steps, [scale(v) for v in one.values], color=f"C{k}", marker=".", label=label)
        ax_profile.set_yscale("log")
        low, high = base.profile_range(drawn)
        ax_profile.set_ylim(low, high)
        base.log_axis(ax_profile.yaxis, low, high)
        ax_profile.set_xlabel("steps back from the answer step")
        ax_profile.set_ylabel(f"relative {base.CARRIER_NAMES[series[0].carrier].split()[0]}")
        ax_profile.set_title("gradient profiles: first (dashed) and last finite evaluation")
        ax_profile.legend(loc="upper center", bbox_to_anchor=(0.5, -0.25))
        ax_profile.grid(True, alpha=0.3)
        base.metric_axis(ax_metric, series[0])
        ax_metric.legend(loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=2)
        ax_metric.set_title("learning curves")
        if title:
            fig.suptitle(title)
        base.save_figure(fig, plt, path, base.DPI)
    return series


def plot_runs(scenario, points, records: Sequence[dict], path) -> None:
    """Several runs of a scenario: a few of one seed side by side (their profiles and learning
    curves); else the success rate against the swept axis."""
    from lstm_cli import rundir, sweep as sweeping

    title = f"{scenario.name}: {scenario.description}"
    if len(records) <= COMPARE_MAX and len({record.get("seed") for record in records}) == 1:
        plot_comparison(records, [rundir.read_metrics(Path(r["run_dir"])) for r in records],
                        [point.key for point in points], path, title=title)
        return
    summary, axes = sweeping.summarise(scenario, points, records)
    base.plot_sweep(summary, axes, path, title=title)
