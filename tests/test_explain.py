"""The sentences of ``lstm_cli.explain``, each checked against the numbers of its profile.

The checks read the printed words (which cause is named first, whether gates are
called open, whether the gradient reaches the first input) and compare them with
the probe's own numbers, so a sentence that contradicts a number fails.
"""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from lstm_cli import explain, models, probes, tasks
from lstm_cli.cli import app

REMEMBER = tasks.get_task("remember")

SPLIT = re.compile(r"per sequence, (?P<total>[\d.]+) decades (?P<way>lost|gained) on average over (?P<k>\d+) "
                   r"steps back: (?P<first>[\d.]+) from (?P<name>tanh'|relu'|W_hh) ")
MAIN = re.compile(r"The main cause is (?P<name>tanh'|relu'|W_hh)")
GATES = re.compile(r"The forget gates are (?P<state>open|not open) \(mean f = (?P<mean>[\d.]+)")
CARRY = re.compile(r"brings (?P<belt>\S+?)[ ,].*?and the paths through h and the gates (?P<gates>\S+?): "
                   r"(?P<who>the direct path carries it|the paths through h and the gates carry it)")


def probe(text: str, gap: int, seed: int = 0, hidden: int = 8, batch: int = 4) -> probes.GradientProfile:
    spec = models.parse_model(text, hidden=hidden)
    return probes.probe_at_init(spec, REMEMBER, gap, batch, seed)


def check_every_claim(profile: probes.GradientProfile) -> str:
    """Assert that every claim of the explanation agrees with the profile's numbers; return the text."""
    s = profile.summary
    text = " ".join(explain.sentences(profile))
    assert "learned" not in text.replace("whether it is learned", ""), text
    if s["verdict"] == "vanishing":
        assert "does not reach the first input" in text, text
    elif s["verdict"] in ("stable", "exploding"):
        assert "reaches the first input" in text and "does not reach" not in text, text
    if "decades" in s and s["verdict"] not in ("overflow", "nan"):
        d = s["decades"]
        act = profile.model["activation"] + "'"
        m = SPLIT.search(text)
        assert m, text
        shares = {act: d["activation"], "W_hh": d["recurrent"]}
        larger = (min if d["total"] <= 0 else max)(shares, key=shares.get)
        assert m["name"] == larger, (text, d)  # the cause named is the larger share
        assert MAIN.search(text)["name"] == larger, text
        assert m["way"] == ("lost" if d["total"] <= 0 else "gained")
        assert float(m["total"]) == pytest.approx(abs(d["total"]), abs=0.051)
        assert float(m["first"]) == pytest.approx(abs(shares[larger]), abs=0.051)
        assert int(m["k"]) == s["steps_back_max"]
        if larger == "W_hh":
            assert f"The main cause is {act}" not in text
    if "belt_rel" in s and s["verdict"] not in ("overflow", "nan"):
        m = GATES.search(text)
        assert m, text
        assert float(m["mean"]) == pytest.approx(s["belt_factor_mean"], abs=0.0051)
        assert (m["state"] == "open") == (s["belt_factor_mean"] >= 0.9), (text, s["belt_factor_mean"])
        c = CARRY.search(text)
        assert c, text
        belt_carries = s["belt_rel"] >= s["gates_rel"]
        assert (c["who"] == "the direct path carries it") == belt_carries, (text, s)
        assert c["belt"] == explain.sci(s["belt_rel"]) and c["gates"] == explain.sci(s["gates_rel"])
    return text


def grid():
    for gap in (5, 50, 300):
        for scale in (0.5, 1, 3):
            yield f"rnn:recurrent_scale={scale}", gap
            for bias in (0, 1, 3):
                yield f"lstm:recurrent_scale={scale},forget_bias={bias}", gap


@pytest.mark.parametrize("text,gap", list(grid()))
def test_every_sentence_agrees_with_its_numbers(text, gap):
    """Acceptance 5: rnn/lstm x forget bias 0/1/3 x scale 0.5/1/3 x gaps 5/50/300."""
    check_every_claim(probe(text, gap))


def test_the_contradictory_case_says_nothing_about_open_gates():
    """Acceptance 5: seed 11, scale 3, forget bias 0 once printed "With the forget gates open
    (mean f = 0.51) ... so the first input can still be learned"."""
    profile = probe("lstm:recurrent_scale=3,forget_bias=0", 50, seed=11, hidden=32, batch=64)
    assert profile.summary["belt_factor_mean"] < 0.6
    text = check_every_claim(profile)
    assert "gates are open" not in text and "gates open" not in text
    assert "not open (mean f = 0.51 < 0.9)" in text
    assert "can still be learned" not in text


def test_default_gap_50_blames_w_hh_and_gives_the_lstm_direct_path_and_total():
    """Acceptance 3, through the command: the RNN states the split with W_hh as the main
    cause and never blames tanh; the LSTM states its direct path and its total."""
    result = CliRunner().invoke(app, ["gradients", "--gap", "50", "--format", "json"])
    assert result.exit_code == 0, result.stderr
    rnn, lstm = (m["summary"] for m in json.loads(result.stdout)["models"])
    assert rnn["decades"]["recurrent"] < rnn["decades"]["activation"] < 0
    table = CliRunner().invoke(app, ["gradients", "--gap", "50"], env={"COLUMNS": "200"}).stdout
    text = " ".join(table.split())  # rich wraps lines
    d = rnn["decades"]
    assert (f"{abs(d['total']):.1f} decades lost on average over 51 steps back: {abs(d['recurrent']):.1f} from "
            f"W_hh (spectral radius") in text
    assert "The main cause is W_hh, not tanh" in text
    assert "The main cause is tanh" not in text and "tanh derivatives pull" not in text
    assert f"the direct path along the conveyor belt (the product of f, the cell state alone) brings " \
           f"{explain.sci(lstm['belt_rel'])}" in text
    assert f"({explain.sci(lstm['relative_at_first_step'])} of its size at the answer step)" in text


@pytest.mark.parametrize("seed", range(5))
def test_tanh_saturation_scenario_vanishes_through_tanh(seed):
    """Acceptance 4: the orthogonal RNN of the scenario vanishes and tanh' carries >= 80% of
    the decades lost; the default RNN beside it vanishes mostly through W_hh."""
    result = CliRunner().invoke(app, ["run", "tanh-saturation", "--set", f"seed={seed}", "--format", "json"])
    assert result.exit_code == 0, result.stderr
    by_label = {m["label"]: m["summary"] for m in json.loads(result.stdout)["models"]}
    saturating, default = by_label["rnn:init=orthogonal"], by_label["rnn"]
    for summary in (saturating, default):
        assert summary["verdict"] == "vanishing"
    d = saturating["decades"]
    assert d["activation"] / d["total"] >= 0.8
    assert default["decades"]["recurrent"] / default["decades"]["total"] >= 0.8


def test_a_belt_without_gate_and_with_another_factor_is_described_by_its_own_name():
    """A cell can plug in its own belt: the factor's name and mean come from the summary."""
    profile = probe("lstm", 20, hidden=8)
    profile.summary.update(belt_factor="z", belt_gate="update gate", belt_factor_mean=0.5)
    text = " ".join(explain.sentences(profile))
    assert "the product of z" in text and "The update gates are not open (mean z = 0.50 < 0.9)" in text
    profile.summary.update(belt_factor="1", belt_gate=None, belt_factor_mean=None)
    text = " ".join(explain.sentences(profile))
    assert "constant error carousel" in text and "product of" not in text and "open" not in text


@pytest.mark.parametrize("seed", [0, 5])
def test_the_1997_cell_is_explained_as_the_carousel_its_numbers_show(seed):
    """No forget gate: the direct path brings exactly 1 from the first input, and the words
    say carousel, not an open forget gate (whose mean would be the constant 1)."""
    profile = probe("lstm:forget_gate=false", 30, seed=seed)
    assert profile.summary["belt_rel"] == pytest.approx(1.0, abs=1e-12)
    text = " ".join(explain.sentences(profile))
    assert f"carousel (no forget gate: the cell state alone, times exactly 1 per step) brings " \
           f"{explain.sci(profile.summary['belt_rel'])}" in text
    assert "forget gates are" not in text and "product of f" not in text
    standard = " ".join(explain.sentences(probe("lstm", 30, seed=seed)))
    assert "product of f" in standard and "carousel" not in standard



@pytest.mark.parametrize("after,cause", [
    ({"activation": float("-inf"), "recurrent": 0.0, "total": float("-inf")}, "tanh'"),
    ({"activation": -0.5, "recurrent": -12.0, "total": -12.5}, "W_hh"),
    ({"activation": -9.0, "recurrent": 3.0, "total": -6.0}, "tanh'"),
    ({"activation": -2.0, "recurrent": 8.0, "total": 6.0}, "W_hh"),
])
def test_training_sentence_names_the_larger_share(after, cause):
    before = {"activation": -17.3, "recurrent": 23.4, "total": 6.1}
    text = explain.training_sentence("tanh", 200, before, after, 0.33, 0.01)
    assert f"{cause} carries the {'loss' if after['total'] < 0 else 'growth'}" in text
    assert ("saturated" in text) == (cause == "tanh'" and after["total"] < 0)
    assert "at init +6.1: -17.3 from tanh', +23.4 from W_hh" in text
