"""The training and sweep figures (lstm_cli/render/figures.py): each is written as PNG and SVG of
the expected size, and every plotted series equals the record it came from."""

from __future__ import annotations

import html
import math
import re
import struct

import pytest

from lstm_cli import models, plot, probes, rundir, runs, tasks
from lstm_cli.errors import BadInput
from lstm_cli.models import ModelSpec
from lstm_cli.render import compare, figures
from lstm_cli.train import TrainConfig

pytest.importorskip("matplotlib")


def png_size(path) -> tuple[int, int]:
    """Width and height from a PNG's signature and IHDR chunk."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    return struct.unpack(">II", data[16:24])


def svg_size(path) -> tuple[str, str]:
    """The width and height attributes of an SVG's root element."""
    text = path.read_text()
    root = re.search(r"<svg\b[^>]*>", text)
    assert root and text.rstrip().endswith("</svg>"), "not an SVG"
    width = re.search(r'\swidth="([^"]+)"', root.group(0)).group(1)
    height = re.search(r'\sheight="([^"]+)"', root.group(0)).group(1)
    return width, height


def _tiny(kind: str) -> TrainConfig:
    return TrainConfig(task="remember", gap=4, model=ModelSpec(kind=kind, hidden=6), batch=16, steps=30,
                       lr=0.01, eval_every=10, eval_size=16, probe_size=4, seed=0)


@pytest.fixture(scope="module", params=["rnn", "lstm"])
def run(request, tmp_path_factory):
    record = runs.run_training(_tiny(request.param), tmp_path_factory.mktemp("runs"))
    return record, rundir.read_metrics(record["run_dir"])


def test_training_series_are_the_records(run):
    record, metrics = run
    series = figures.training_series(record, metrics)
    carrier = "dc" if record["model"].startswith("lstm") else "dh"  # the cell state carries the LSTM's
    assert series.carrier == carrier == record["gradient"]["carrier"]
    assert series.steps == [m["step"] for m in metrics] and len(metrics) >= 2
    assert series.steps_back == list(range(record["gradient"]["steps_back_first_step"] + 1))
    assert series.heat == [m[f"{carrier}_rel"] for m in metrics]
    assert series.profile_init == record["gradient"][f"{carrier}_rel_before"]
    assert series.profile_end == record["gradient"][f"{carrier}_rel"]
    assert series.values == [m["accuracy"] for m in metrics]
    assert (series.metric, series.threshold, series.chance) == ("accuracy", 0.99, 0.25)  # remember's criterion


@pytest.fixture(scope="module")
def lstm_run(tmp_path_factory):
    record = runs.run_training(_tiny("lstm"), tmp_path_factory.mktemp("runs"))
    return record, rundir.read_metrics(record["run_dir"])


@pytest.mark.parametrize("suffix, size", [(".png", (1000, 700)), (".svg", ("720pt", "504pt"))])
def test_training_figure_files(lstm_run, tmp_path, suffix, size):
    record, metrics = lstm_run
    path = tmp_path / f"train{suffix}"
    drawn = figures.plot_training(record, metrics, path, title="remember gap 4")
    assert drawn == figures.training_series(record, metrics)
    assert (png_size(path) if suffix == ".png" else svg_size(path)) == size
    if suffix == ".svg":
        svg = html.unescape(path.read_text())  # the text is kept as text (svg.fonttype none), escaped
        for label in ("success: accuracy >= 0.99", "chance 0.25", "held-out accuracy", "remember gap 4",
                      f"step {metrics[0]['step']}", f"step {metrics[-1]['step']}"):
            assert label in svg, label


def test_zero_inf_and_nan_norms_are_gaps_not_errors(tmp_path):
    record = {"task": "remember", "metric": "accuracy", "chance": 0.25, "criterion": "accuracy >= 0.99",
              "gradient": {"carrier": "dh", "steps_back": [0, 1, 2, 3]}}
    metrics = [{"step": 0, "accuracy": 0.25, "dh_rel": [1.0, 0.1, 0.0, 1e-300]},
               {"step": 10, "accuracy": "nan", "dh_rel": [1.0, "inf", "nan", 1e-20]}]
    series = figures.plot_training(record, metrics, tmp_path / "t.svg")
    assert series.heat[1][1] == math.inf and math.isnan(series.heat[1][2]) and math.isnan(series.values[1])
    assert "grey: 0, inf or nan" in (tmp_path / "t.svg").read_text()


def test_a_run_without_evaluations_is_bad_input(tmp_path):
    with pytest.raises(BadInput, match="no evaluation"):
        figures.plot_training({"metric": "accuracy", "run_dir": "runs/x"}, [], tmp_path / "t.png")


# ---- sweeps ----

# as summary.jsonl holds them (sweep.aggregate): axis values as text
SUMMARY = [
    {"gap": "5", "model": "rnn", "runs": 5, "succeeded": 5, "median_steps_to_success": 100.0},
    {"gap": "5", "model": "lstm", "runs": 5, "succeeded": 5, "median_steps_to_success": 75.0},
    {"gap": "50", "model": "rnn", "runs": 5, "succeeded": 0, "median_steps_to_success": None},
    {"gap": "50", "model": "lstm", "runs": 10, "succeeded": 5, "median_steps_to_success": 100.0},
]


def test_wilson_interval_against_published_values():
    # Newcombe (1998), table I, method 3: 0/10 -> 0-0.2775, 10/10 -> 0.7225-1; and 5/10 -> 0.2366-0.7634
    low, high = figures.wilson_interval(0, 10)
    assert low == pytest.approx(0.0, abs=1e-12) and high == pytest.approx(0.2775, abs=5e-5)
    low, high = figures.wilson_interval(10, 10)
    assert low == pytest.approx(0.7225, abs=5e-5) and high == pytest.approx(1.0, abs=1e-12)
    low, high = figures.wilson_interval(5, 10)
    assert (low, high) == (pytest.approx(0.2366, abs=5e-5), pytest.approx(0.7634, abs=5e-5))


def test_sweep_series_are_the_summary_rows():
    series = figures.sweep_series(SUMMARY, ["gap", "model"])
    assert series.axis == "gap" and [line.label for line in series.lines] == ["rnn", "lstm"]
    for line in series.lines:
        rows = [r for r in SUMMARY if r["model"] == line.label]
        assert line.x == [r["gap"] for r in rows]
        assert line.runs == [r["runs"] for r in rows] and line.succeeded == [r["succeeded"] for r in rows]
        assert line.rate == [r["succeeded"] / r["runs"] for r in rows]
        assert [(lo, hi) for lo, hi in zip(line.low, line.high)] == [
            figures.wilson_interval(r["succeeded"], r["runs"]) for r in rows]
        for steps, row in zip(line.median_steps, rows):
            expected = row["median_steps_to_success"]
            assert math.isnan(steps) if expected is None else steps == expected
    assert series.has_steps


@pytest.mark.parametrize("suffix, size", [(".png", (1000, 450)), (".svg", ("720pt", "324pt"))])
def test_sweep_figure_files(tmp_path, suffix, size):
    path = tmp_path / f"sweep{suffix}"
    drawn = figures.plot_sweep(SUMMARY, ["gap", "model"], path, title="remember-gap")
    assert drawn == figures.sweep_series(SUMMARY, ["gap", "model"])
    assert (png_size(path) if suffix == ".png" else svg_size(path)) == size
    if suffix == ".svg":
        svg = path.read_text()
        for label in ("success rate", "median steps to success", "95% Wilson interval", "remember-gap"):
            assert label in svg, label


def test_one_panel_when_no_run_succeeded_and_other_axes_name_the_lines(tmp_path):
    rows = [{"clip": "0", "model": "rnn", "runs": 1, "succeeded": 0, "median_steps_to_success": None},
            {"clip": "1", "model": "rnn", "runs": 1, "succeeded": 0, "median_steps_to_success": None}]
    series = figures.plot_sweep(rows, ["clip", "model"], tmp_path / "s.svg")
    assert series.axis == "clip" and not series.has_steps and [l.label for l in series.lines] == ["rnn"]
    svg = (tmp_path / "s.svg").read_text()
    assert "median steps to success" not in svg and svg_size(tmp_path / "s.svg") == ("720pt", "324pt")
    models_only = figures.sweep_series([{**rows[0], "model": "lstm:forget_bias=0"}, rows[0]], ["model"])
    assert models_only.axis == "model" and models_only.lines[0].x == ["lstm:forget_bias=0", "rnn"]
    rows3 = [{**rows[0], "lr": "0.1"}, {**rows[1], "lr": "0.1"}]
    assert [l.label for l in figures.sweep_series(rows3, ["clip", "model", "lr"]).lines] == ["rnn, lr=0.1"]


# ---- the gradients figure: a legend entry for every threshold line ----

def test_gradient_figure_names_its_threshold_lines(tmp_path):
    task = tasks.get_task("remember")
    profile = probes.probe_at_init(models.parse_model("rnn", hidden=4), task, 6, 2, seed=0, label="rnn")
    svg = plot.plot_profiles([profile], tmp_path / "g.svg").read_text()
    # a profile far from the exploding threshold does not stretch the axis up to it
    assert f"vanishing below {probes.VANISHING:g}" in svg and "exploding above" not in svg
    exploding = probes.probe_at_init(models.parse_model("rnn:init=orthogonal,recurrent_scale=3", hidden=8), task,
                                     20, 4, seed=0, label="rnn x3")
    svg = plot.plot_profiles([exploding], tmp_path / "e.svg").read_text()
    assert f"exploding above {probes.EXPLODING:g}" in svg


# ---- slide-ready: read through matplotlib's objects, not pixels ----

@pytest.fixture
def drawn(monkeypatch):
    """The figures a plot function saves, kept open for inspection instead of closed."""
    figs = []

    def keep(fig, plt, path, dpi=None):
        fig.savefig(path, dpi=dpi)
        figs.append(fig)

    monkeypatch.setattr(figures, "save_figure", keep)
    monkeypatch.setattr(plot, "save_figure", keep)
    yield figs
    import matplotlib.pyplot as plt

    for fig in figs:
        plt.close(fig)


def _small_text(fig) -> list[tuple[str, float]]:
    from matplotlib.text import Text

    return [(t.get_text(), t.get_fontsize()) for t in fig.findobj(Text)
            if t.get_text().strip() and t.get_visible() and t.get_fontsize() < 10]


def _heatmaps(fig):
    from matplotlib.collections import QuadMesh

    return [c for ax in fig.axes for c in ax.collections  # a colourbar draws a QuadMesh too
            if isinstance(c, QuadMesh) and ax.get_xlabel() == "training step"]


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_training_figure_is_slide_ready(kind, tmp_path, drawn):
    record = runs.run_training(_tiny(kind), tmp_path / "runs")
    figures.plot_training(record, rundir.read_metrics(record["run_dir"]), tmp_path / "t.png",
                          title=figures.training_title(record))
    fig = drawn[0]
    assert _small_text(fig) == []
    (mesh,) = _heatmaps(fig)
    assert (mesh.norm.vmin, mesh.norm.vmax) == figures.HEAT_RANGE  # one scale for every run: they compare
    ax_heat = mesh.axes
    assert ax_heat.get_xlabel() == "training step" and ax_heat.get_ylabel().startswith("steps back")
    assert all(label.get_visible() for label in ax_heat.get_xticklabels())
    bar = next(ax for ax in fig.axes if ax is not ax_heat and ax.get_ylabel().startswith("relative"))
    heat_box, bar_box = ax_heat.get_position(), bar.get_position()
    assert 0 <= bar_box.x0 - heat_box.x1 < 0.03  # right beside the heatmap, over its height
    assert heat_box.y0 <= bar_box.y0 < bar_box.y1 <= heat_box.y1 and bar_box.height > 0.8 * heat_box.height
    learned = "learned in" if record["success"] else "did not learn in"
    assert learned in fig.get_suptitle() and "completed" not in fig.get_suptitle()


def test_titles_and_baselines_say_what_they_are():
    failed = {"task": "adding", "gap": 50, "model": "rnn", "seed": 0, "status": "completed", "success": False,
              "steps": 500, "metric": "mse", "mse": 0.508}
    assert figures.training_title(failed) == "adding gap 50, rnn, seed 0: did not learn in 500 steps (mse 0.508)"
    diverged = {**failed, "status": "diverged", "steps": 207, "diverged_at": 208}  # 207 updates, the 208th failed
    assert "diverged at step 208" in figures.training_title(diverged)
    assert figures.baseline_label("mse", 1 / 6) == "always predict the mean (MSE 0.167)"
    assert figures.baseline_label("accuracy", 0.25) == "chance 0.25"


def test_mse_axis_is_labelled_in_powers_of_ten(tmp_path, drawn):
    record = {"task": "adding", "metric": "mse", "chance": 1 / 6, "criterion": "mse < 0.01",
              "gradient": {"carrier": "dh", "steps_back": [0, 1, 2]}}
    metrics = [{"step": 0, "mse": 0.5, "dh_rel": [1.0, 0.1, 0.01]}, {"step": 10, "mse": 0.005, "dh_rel": [1, 1, 1]}]
    figures.plot_training(record, metrics, tmp_path / "m.png")
    ax = next(ax for ax in drawn[0].axes if ax.get_ylabel() == "held-out MSE")
    drawn[0].canvas.draw()
    labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert labels and all(re.fullmatch(r"\$10\^\{-?\d+\}\$", text) for text in labels), labels
    assert "always predict the mean (MSE 0.167)" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_a_few_runs_are_drawn_side_by_side_on_one_scale(tmp_path, drawn):
    records = [runs.run_training(_tiny(kind), tmp_path / "runs", name=kind) for kind in ("rnn", "lstm")]
    metrics = [rundir.read_metrics(r["run_dir"]) for r in records]
    compare.plot_comparison(records, metrics, ["model=rnn", "model=lstm"], tmp_path / "c.png", title="two runs")
    fig = drawn[0]
    assert _small_text(fig) == []
    meshes = _heatmaps(fig)
    assert len(meshes) == 2 and {(m.norm.vmin, m.norm.vmax) for m in meshes} == {figures.HEAT_RANGE}
    for mesh, record in zip(meshes, records):
        assert figures.outcome_words(record) in mesh.axes.get_title()
    profile = next(ax for ax in fig.axes if ax.get_title().startswith("gradient profiles"))
    curves = next(ax for ax in fig.axes if ax.get_title() == "learning curves")
    assert len(profile.get_lines()) == 4 and profile.get_yscale() == "log"  # first and last, per run
    low, high = profile.get_ylim()
    assert low <= figures.HEAT_RANGE[0] and high >= figures.HEAT_RANGE[1]
    assert curves.get_xlabel() == "training step" and curves.get_ylabel() == "held-out accuracy"
    assert "success rate" not in " ".join(ax.get_ylabel() for ax in fig.axes)


def test_remember_gap_bands_do_not_overlap_and_zero_points_are_marked(tmp_path, drawn):
    from matplotlib.collections import PolyCollection

    figures.plot_sweep(SUMMARY, ["gap", "model"], tmp_path / "s.png")
    fig = drawn[0]
    assert _small_text(fig) == []
    rate, steps = fig.axes[0], fig.axes[1]
    assert not any(isinstance(c, PolyCollection) for c in rate.collections)  # no translucent bands to mix
    lines = [line for line in rate.get_lines() if line.get_marker() == "o"]
    x_rnn, x_lstm = (list(line.get_xdata()) for line in lines[:2])
    assert all(a != b for a, b in zip(x_rnn, x_lstm))  # the two intervals at one gap are drawn apart
    assert [t.get_text() for t in rate.texts] == ["0/5"]  # rnn at gap 50: 0 of 5
    assert any(line.get_marker() == "x" and list(line.get_ydata()) == [0] for line in steps.get_lines())
    assert rate.get_ylabel().startswith("success rate") and rate.get_xlabel() == "gap"


def test_gradient_figure_is_slide_ready(tmp_path, drawn):
    task = tasks.get_task("remember")
    profiles = [probes.probe_at_init(models.parse_model(kind, hidden=8), task, 20, 4, seed=0, label=kind)
                for kind in ("rnn", "lstm")]
    plot.plot_profiles(profiles, tmp_path / "g.png")
    (ax,) = drawn[0].axes
    assert _small_text(drawn[0]) == []
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "lstm ||dL/dc||, through h and the gates" in labels
    highest = max(max(v for v in line.get_ydata() if v == v) for line in ax.get_lines())
    assert ax.get_ylim()[1] <= 10 * highest  # no empty decades above the data


def test_a_diverged_run_is_compared_by_its_last_finite_profile(tmp_path, drawn):
    base = {"task": "adding", "metric": "mse", "chance": 1 / 6, "criterion": "mse < 0.01", "seed": 0,
            "gradient": {"carrier": "dh", "steps_back": [0, 1, 2]}}
    diverged = {**base, "status": "diverged", "steps": 19, "diverged_at": 20, "success": False}
    clipped = {**base, "status": "completed", "steps": 20, "success": False, "mse": 0.5}
    metrics = [[{"step": 0, "mse": 0.5, "dh_rel": [1.0, 30.0, 1e6]}, {"step": 10, "mse": "inf", "dh_rel": ["nan"] * 3}],
               [{"step": 0, "mse": 0.5, "dh_rel": [1.0, 3.0, 9.0]}, {"step": 20, "mse": 0.5, "dh_rel": [1, 2, 4]}]]
    compare.plot_comparison([diverged, clipped], metrics, ["clip=0", "clip=1"], tmp_path / "x.png")
    profile = next(ax for ax in drawn[0].axes if ax.get_title().startswith("gradient profile"))
    labels = [t.get_text() for t in profile.get_legend().get_texts()]
    assert labels == ["clip=0, step 0", "clip=0, step 0", "clip=1, step 0", "clip=1, step 20"]
    assert profile.get_ylim()[1] >= 1e7  # the explosion is inside the axis, not cut at the heatmap's 10
    titles = [m.axes.get_title() for m in _heatmaps(drawn[0])]
    assert titles[0].startswith("clip=0: diverged at step 20") and "grey: 0, inf or nan" in titles[0]
    assert titles[1].startswith("clip=1: did not learn in 20 steps (mse 0.5)")
