"""lstm_cli.printed: a zero prints without a sign, and no word changes on a difference below
what is printed (another CPU family's rounding: 1e-12 relative, 1e-14 decades of noise)."""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import sys

import numpy as np
import pytest

from lstm_cli import explain, models, probes, tasks
from lstm_cli.printed import fixed, largest, rounded, significant
from lstm_cli.render import gradients as render_gradients
from lstm_cli.render.train import fmt

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from numeric_text import differences  # noqa: E402


def test_a_value_that_prints_as_zero_prints_the_same_whatever_its_sign():
    for tiny in (0.0, -0.0, 1e-14, -1e-14, 0.049, -0.049):
        assert fixed(tiny, 1, signed=True) == "0.0"
        assert fixed(tiny, 1) == "0.0"
        assert render_gradients._decades(tiny) == "0.0"
        assert explain.decades(tiny) == "0.0"
        assert rounded(tiny, 1) == 0 and math.copysign(1, rounded(tiny, 1)) == 1
    assert fmt(-0.0) == fmt(0.0) == "0"
    assert fixed(-0.06, 1, signed=True) == "-0.1" and fixed(0.06, 1, signed=True) == "+0.1"
    assert fixed(-0.06, 1) == "-0.1"
    assert fixed(math.inf, 1, signed=True) == "+inf" and fixed(-math.inf, 1) == "-inf"
    assert fixed(math.nan) == "nan"


def test_ties_as_printed_go_to_the_first_named():
    assert largest({"a": 1.0 + 1e-14, "b": 1.0}, 1) == "a"
    assert largest({"a": 1.0, "b": 1.0 + 1e-14}, 1) == "a"
    assert largest({"a": 1.0, "b": 1.1}, 1) == "b"
    assert largest({"a": -2.0, "b": -2.0 - 1e-14}, 1, smallest=True) == "a"
    assert largest({"a": -2.0, "b": -2.1}, 1, smallest=True) == "b"
    assert significant(9.996e-4) == 1e-3 and significant(1.04e-35) == 1.0e-35


def _noisy(value, eps: float, delta: float):
    """``value`` as another family might compute it: relative ``eps``, and ``delta`` on decades."""
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return value * (1 + eps) + delta
    if isinstance(value, float):
        return value * (1 + eps) + delta
    if isinstance(value, dict):
        return {k: _noisy(v, eps, delta if "decades" in k else 0.0) if k != "model" else v
                for k, v in value.items()}
    if isinstance(value, list):
        return [_noisy(v, eps, delta) for v in value]
    if dataclasses.is_dataclass(value):
        return dataclasses.replace(value, **{
            f.name: _noisy(getattr(value, f.name), eps, delta if f.name.startswith("decades") else 0.0)
            for f in dataclasses.fields(value) if f.name not in ("label", "model", "task", "steps_back")})
    return value


def _printed(profile: probes.GradientProfile) -> str:
    farthest = int(profile.steps_back[-1])
    cells = [" ".join(values) for _, values in render_gradients._columns(profile, 0) if values is not None]
    return "\n".join([render_gradients.summary_line(profile), render_gradients.explanation(profile),
                      render_gradients.explanation(profile, trained=True), *cells, str(farthest)])


MODELS = ["rnn:init=orthogonal", "rnn", "rnn:recurrent_scale=3", "rnn:activation=relu,init=identity",
          "rnn:init=orthogonal,recurrent_scale=0.5", "lstm", "lstm:forget_bias=0", "lstm:chrono=20", "gru"]


@pytest.mark.parametrize("text", MODELS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_word_or_sign_changes_on_noise_below_what_is_printed(text, seed):
    spec = models.parse_model(text, hidden=16)
    profile = probes.probe_at_init(spec, tasks.get_task("remember"), 40, 8, seed)
    said = _printed(profile)
    for eps, delta in ((1e-12, 1e-14), (-1e-12, -1e-14), (1e-12, -1e-14), (-1e-12, 1e-14)):
        noisy = _printed(_noisy(copy.deepcopy(profile), eps, delta))
        # the words exactly; a number may print differently only where it sits on a rounding
        # boundary (0.5^3 = 0.125 exactly), and then only as the neighbouring rounding
        assert not differences(said, noisy), (text, seed, eps, delta, differences(said, noisy))


def test_the_orthogonal_rnn_names_no_direction_for_a_zero_share():
    """The case that flipped between CPU families: W_hh's share of an orthogonal RNN is +-1e-14."""
    spec = models.parse_model("rnn:init=orthogonal", hidden=32)
    profile = probes.probe_at_init(spec, tasks.get_task("remember"), 150, 64, 0)
    for delta in (1e-14, -1e-14):
        noisy = copy.deepcopy(profile)
        noisy.summary["decades"]["recurrent"] = delta
        noisy.decades_recurrent = noisy.decades_recurrent * 0 + delta
        text = render_gradients.explanation(noisy)
        assert "0.0 from W_hh" in text and "gives" not in text and "takes" not in text, text
        assert {render_gradients._decades(v) for v in noisy.decades_recurrent} == {"0.0"}


def test_the_training_sentence_prints_no_signed_zero():
    for tiny in (1e-14, -1e-14):
        text = explain.training_sentence("tanh", 500, {"activation": tiny, "recurrent": -3.0, "total": -3.0},
                                         {"activation": -2.0, "recurrent": tiny, "total": tiny - 2.0}, 0.9, 0.5)
        assert "-0.0" not in text and "+0.0" not in text and "0.0 from W_hh" in text, text
        assert explain.training_sentence("tanh", 5, None, {"activation": tiny, "recurrent": -tiny,
                                                           "total": tiny}, None, None).count(" 0.0 decades") == 1
