"""The views of ``lstm-demo gradients``: rows, bars, words, JSON, CSV and the table.

Profiles come from the real probe at tiny sizes; every number a view shows is
checked against the profile it was given, never against the view itself.
"""

from __future__ import annotations

import csv
import io
import json
import re

import pytest

from lstm_cli import models, probes, tasks
from lstm_cli.errors import BadInput
from lstm_cli.plain import write_csv
from lstm_cli.render import gradients as view

GAP, HIDDEN, BATCH = 30, 16, 16  # T = 32 for remember: 31 steps back


def profile(model: str):
    spec = models.parse_model(model, hidden=HIDDEN)
    return probes.probe_at_init(spec, tasks.get_task("remember"), GAP, BATCH, seed=0, label=model)


@pytest.fixture(scope="module")
def profiles():
    # the four stories of the tool; the verdicts are asserted where they are used
    return {name: profile(name) for name in
            ("rnn", "rnn:recurrent_scale=3", "lstm", "lstm:forget_bias=0")}


# ---- rows ----

def test_default_rows_are_readable_and_hold_first_and_last_step():
    assert view.default_rows(51) == [0, 1, 2, 5, 10, 20, 30, 40, 50, 51]
    assert view.default_rows(50) == [0, 1, 2, 5, 10, 20, 30, 40, 50]
    assert view.default_rows(3) == [0, 1, 2, 3]
    assert view.default_rows(0) == [0]
    long = view.default_rows(1001)
    assert long == [0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 1001]


def test_parse_rows():
    assert view.parse_rows("all", 4) == [0, 1, 2, 3, 4]
    assert view.parse_rows("default", 51) == view.default_rows(51)
    assert view.parse_rows(" 10, 0,5,5 ", 51) == [0, 5, 10]
    with pytest.raises(BadInput, match="outside 0..51"):
        view.parse_rows("0,52", 51)
    with pytest.raises(BadInput, match="bad --rows"):
        view.parse_rows("first", 51)
    with pytest.raises(BadInput, match="outside"):
        view.parse_rows("-1", 51)


# ---- numbers ----

def test_sci_spells_out_zero_inf_and_nan():
    assert view.sci(7.403e-13) == "7.4e-13"
    assert view.sci(8324882.79) == "8.3e+06"
    assert view.sci(0.0) == view.sci(-0.0) == "0.0e+00"  # the style of its neighbours, never a sign
    assert view.sci(4e-330 if 4e-330 else 0.0) == "0.0e+00"
    assert view.sci(float("inf")) == "inf"
    assert view.sci(float("nan")) == "nan"
    assert view.sci(None) == ""


def test_log_bar_is_logarithmic():
    full = view._BLOCKS[-1]
    assert view.log_bar(1.0, -10, 0, width=10) == full * 10
    assert view.log_bar(1e-5, -10, 0, width=10) == full * 5  # half the decades, half the bar
    assert view.log_bar(1e-10, -10, 0, width=10) == ""
    assert view.log_bar(1e-30, -10, 0, width=10) == ""  # below the scale: empty, not negative
    assert view.log_bar(1e5, -10, 0, width=10) == full * 10  # above it: full
    assert view.log_bar(10 ** -9.5, -10, 0, width=10) == view._BLOCKS[4]  # half a cell
    assert view.log_bar(0.0, -10, 0) == ""
    assert view.log_bar(float("inf"), -10, 0, width=4) == full * 4
    assert view.log_bar(float("nan"), -10, 0) == "?"


def test_bar_scale_spans_the_data_and_at_least_ten_decades():
    assert view.bar_scale([1.0, 7.4e-13]) == (-13, 0)
    assert view.bar_scale([1.0, 8.3e6, 0.04]) == (-3, 7)
    assert view.bar_scale([1.0, 0.5]) == (-10, 0)
    assert view.bar_scale([1.0, 0.0, float("inf"), float("nan"), 1e-3]) == (-10, 0)


# ---- words ----

def test_summary_line_states_decay_horizon_verdict_and_init(profiles):
    rnn = profiles["rnn"]
    assert rnn.summary["verdict"] == "vanishing"
    line = view.summary_line(rnn)
    s = rnn.summary
    assert line.startswith("rnn: ||dL/dh||")
    assert f"x{s['decay_per_step']:.3g} per step" in line
    assert f"below 0.001 from {s['horizon']} steps back" in line
    assert f"{s['relative_at_first_step']:.1e} at {GAP + 1} steps back" in line
    assert "VANISHING" in line
    assert f"sigma_max(W_hh) {rnn.sigma_max:.3g}" in line and "recurrent scale 1" in line

    lstm = profiles["lstm"]
    assert lstm.summary["verdict"] == "stable"
    line = view.summary_line(lstm)
    assert line.startswith("lstm: ||dL/dc||") and "never below 0.001" in line and "STABLE" in line
    assert "forget bias 3 (sigmoid = 0.95)" in line


def test_explanations_tell_the_articles_story(profiles):
    assert profiles["rnn:recurrent_scale=3"].summary["verdict"] == "exploding"
    assert profiles["lstm:forget_bias=0"].summary["verdict"] == "vanishing"
    vanishing = view.explanation(profiles["rnn"])
    assert "W_hh" in vanishing and "does not reach the first input" in vanishing
    exploding = view.explanation(profiles["rnn:recurrent_scale=3"])
    assert "grows" in exploding and "clips gradients" in exploding
    belt = view.explanation(profiles["lstm"])
    assert "conveyor belt" in belt and "forget gate" in belt and "reaches the first input" in belt
    closed = profiles["lstm:forget_bias=0"]
    honest = view.explanation(closed)
    assert "not open" in honest and "does not reach the first input" in honest
    assert f"{sum(closed.forget) / len(closed.forget):.2f}" in honest


def test_overflow_is_explained_not_hidden():
    big = profile("rnn")
    big.summary = dict(big.summary, verdict="overflow", relative_at_first_step=float("inf"))
    assert "overflowed to inf" in view.explanation(big)
    assert "OVERFLOW" in view.summary_line(big)


# ---- machine formats ----

def test_json_document_holds_every_step_of_every_model(profiles):
    chosen = [profiles["rnn"], profiles["lstm"]]
    settings = {"task": "remember", "gap": GAP}
    doc = json.loads(json.dumps(view.json_document(chosen, settings)))
    assert doc["command"] == "gradients" and doc["settings"] == settings
    assert doc["thresholds"] == {"vanishing": probes.VANISHING, "exploding": probes.EXPLODING}
    assert [m["label"] for m in doc["models"]] == ["rnn", "lstm"]
    for model, p in zip(doc["models"], chosen):
        assert model["steps"]["steps_back"] == list(range(GAP + 2))
        assert model["steps"]["dh_rel"] == p.dh.rel.tolist()
        assert model["summary"] == p.summary
    assert doc["models"][1]["steps"]["dc_mean"] == profiles["lstm"].dc.mean.tolist()
    assert "dc_mean" not in doc["models"][0]["steps"]


def test_csv_has_one_row_per_model_and_step(profiles):
    chosen = [profiles["rnn"], profiles["lstm"]]
    out = io.StringIO()
    write_csv(view.csv_rows(chosen), out, fieldnames=view.CSV_FIELDS)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert len(rows) == 2 * (GAP + 2)
    assert list(rows[0]) == view.CSV_FIELDS
    rnn_rows, lstm_rows = rows[:GAP + 2], rows[GAP + 2:]
    assert [int(r["steps_back"]) for r in rnn_rows] == list(range(GAP + 2))
    assert {r["label"] for r in rnn_rows} == {"rnn"} and {r["kind"] for r in lstm_rows} == {"lstm"}
    for k in (0, 7, GAP + 1):
        assert float(rnn_rows[k]["dh_mean"]) == profiles["rnn"].dh.mean[k]  # full precision
        assert float(rnn_rows[k]["bound"]) == profiles["rnn"].bound[k]
        assert float(lstm_rows[k]["dc_rel"]) == profiles["lstm"].dc.rel[k]
        assert float(lstm_rows[k]["forget_product"]) == profiles["lstm"].forget_product[k]
    assert rnn_rows[3]["dc_mean"] == "" and lstm_rows[3]["bound"] == ""
    assert rnn_rows[0]["verdict"] == "vanishing" and lstm_rows[0]["verdict"] == "stable"


# ---- the table ----

ROW = re.compile(r"^\s*(\d+)\s+(\d\.\de[+-]\d\d|0|inf|nan)(\s|$)")  # a step, then a number


def table_rows(text: str) -> dict[int, str]:
    """The table's rows by their step back."""
    return {int(m.group(1)): line for line in text.splitlines() if (m := ROW.match(line))}


def render(chosen, width, rows=None):
    from rich.console import Console

    out = io.StringIO()
    # whatever FORCE_COLOR, NO_COLOR, TERM or COLUMNS the user has: a plain file of this width
    console = Console(file=out, width=width, no_color=True, highlight=False, force_terminal=False,
                      color_system=None)
    steps = rows or view.default_rows(GAP + 1)
    view.render_table(chosen, steps, "title", console)
    return out.getvalue()


@pytest.mark.parametrize("width", [200, 100, 80, 60, 40, 20])
def test_table_fits_any_width_and_keeps_the_verdicts(profiles, width):
    chosen = [profiles["rnn"], profiles["lstm"]]
    text = render(chosen, width)
    assert "VANISHING" in text and "STABLE" in text
    assert "\x1b[" not in text
    if width >= 40:  # below that the numbers are cut short, but nothing breaks
        rows = table_rows(text)
        assert list(rows) == view.default_rows(31)
        assert view.sci(profiles["rnn"].dh.rel[31]) in rows[31]
        assert max(len(line) for line in text.splitlines()) <= width


def test_wide_table_shows_every_column(profiles):
    chosen = [profiles["rnn"], profiles["lstm"]]
    text = render(chosen, 200)
    for header in ("||dL/dh||", "dh rel", "log dh", "bound", "tanh'", "W_hh", "||dL/dc||", "dc rel", "log dc",
                   "belt", "gates"):
        assert header in text, header
    assert "narrow terminal" not in text
    last = table_rows(text)[31]
    assert view.sci(profiles["rnn"].dh.rel[31]) in last
    assert view.sci(profiles["lstm"].dc.rel[31]) in last
    assert view.sci(profiles["rnn"].bound[31]) in last
    narrow = render(chosen, 60)
    note = narrow[narrow.index("(narrow terminal"):]
    assert "bound" in note[:note.index("hidden;")] and "bound" not in narrow[:narrow.index("(narrow terminal")]


def test_table_rows_are_the_chosen_steps(profiles):
    text = render([profiles["rnn"]], 200, rows=[0, 3, 17])
    rows = table_rows(text)
    assert list(rows) == [0, 3, 17]
    assert view.sci(profiles["rnn"].dh.mean[17]) in rows[17]


def test_a_trained_model_is_not_described_as_an_init(profiles):
    closed = profiles["lstm:forget_bias=0"]
    assert "Trained from init: forget bias 0" in view.summary_line(closed, trained=True)
    assert "forget_bias=3 (--model lstm:" in view.explanation(closed)  # advice for a fresh model ...
    assert "--model" not in view.explanation(closed, trained=True)  # ... not for a trained one
    assert "still reaches the first input" in view.explanation(profiles["lstm"], trained=True)


def test_a_relu_rnn_is_not_explained_with_tanh():
    relu = profile("rnn:activation=relu,init=identity")
    text = view.explanation(relu)
    assert "relu'" in text and "tanh" not in text
