"""The training and sweep figures (lstm_cli/render/figures.py): each is written as PNG and SVG of
the expected size, and every plotted series equals the record it came from."""

from __future__ import annotations

import html
import math
import re
import struct

import pytest

from lstm_cli import models, plot, probes, runs, tasks
from lstm_cli.errors import BadInput
from lstm_cli.models import ModelSpec
from lstm_cli.render import figures
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
    return record, runs.read_metrics(record["run_dir"])


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
    return record, runs.read_metrics(record["run_dir"])


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
    assert f"vanishing below {probes.VANISHING:g}" in svg and f"exploding above {probes.EXPLODING:g}" in svg
