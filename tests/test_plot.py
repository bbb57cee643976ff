"""``--plot FILE``: the figure, its formats, and the message when matplotlib is missing."""

from __future__ import annotations

import math
import sys

import pytest
from typer.testing import CliRunner

from lstm_cli import models, plot, probes, tasks
from lstm_cli.cli import app
from lstm_cli.errors import BadInput

runner = CliRunner()


@pytest.fixture(scope="module")
def profiles():
    task = tasks.get_task("remember")
    return [probes.probe_at_init(models.parse_model(m, hidden=8), task, 12, 4, seed=0, label=m)
            for m in ("rnn", "lstm:forget_bias=0")]


def test_svg_has_one_line_per_norm_and_model(tmp_path, profiles):
    pytest.importorskip("matplotlib")
    path = plot.plot_profiles(profiles, tmp_path / "flow.svg", title="remember, gap 12")
    svg = path.read_text()
    assert svg.lstrip().startswith("<?xml") and "</svg>" in svg
    # text is kept as text (svg.fonttype none): the legend names what is drawn
    for label in ("rnn ||dL/dh||", "lstm:forget_bias=0 ||dL/dh||", "lstm:forget_bias=0 ||dL/dc||",
                  "lstm:forget_bias=0 ||dL/dc||, direct path (belt)", "remember, gap 12",
                  "steps back from the loss step"):
        assert label in svg, label
    assert "rnn ||dL/dc||" not in svg  # the RNN has no cell state


def test_png_and_pdf(tmp_path, profiles):
    pytest.importorskip("matplotlib")
    assert plot.plot_profiles(profiles, tmp_path / "flow.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot.plot_profiles(profiles, tmp_path / "flow.pdf").read_bytes()[:5] == b"%PDF-"


def test_log_axis_gets_gaps_for_zero_inf_and_nan():
    values = plot.positive([1.0, 0.0, float("inf"), float("nan"), 1e-300])
    assert values[0] == 1.0 and values[4] == 1e-300
    assert all(math.isnan(v) for v in values[1:4])


def test_bad_targets(tmp_path):
    with pytest.raises(BadInput, match="ending in .png, .svg, .pdf"):
        plot.check_target(tmp_path / "flow.jpeg")
    with pytest.raises(BadInput, match="does not exist"):
        plot.check_target(tmp_path / "missing" / "flow.png")
    assert plot.check_target(tmp_path / "FLOW.PNG") == tmp_path / "FLOW.PNG"


def test_missing_matplotlib_names_the_extra(monkeypatch, tmp_path, profiles):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    with pytest.raises(BadInput, match=r'pip install "lstm-demo\[plot\]"'):
        plot.plot_profiles(profiles, tmp_path / "flow.png")


def test_cli_plot_writes_the_file_and_says_so_on_stderr(tmp_path):
    pytest.importorskip("matplotlib")
    target = tmp_path / "flow.svg"
    result = runner.invoke(app, ["gradients", "--gap", "12", "--batch", "4", "--format", "json",
                                 "--plot", str(target)])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.lstrip().startswith("{")  # stdout holds only the data
    assert result.stderr.strip() == f"lstm-demo: plot written to {target}"
    svg = target.read_text()
    assert "rnn ||dL/dh||" in svg and "lstm ||dL/dc||" in svg
    assert "Gradient flow at initialisation: remember, gap 12, batch 4, seed 0" in svg


def test_cli_without_matplotlib_fails_before_computing(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    result = runner.invoke(app, ["gradients", "--gap", "12", "--plot", str(tmp_path / "flow.png")])
    assert result.exit_code == 2
    assert result.stdout == ""  # no table first, then an error
    assert result.stderr.strip() == ('lstm-demo: error: --plot needs matplotlib, which is not installed: '
                                     'pip install "lstm-demo[plot]"')
    assert not (tmp_path / "flow.png").exists()
