"""The training result's renderers (lstm_cli/render/train.py) on numbers a diverging model produces."""

from __future__ import annotations

import io

from rich.console import Console

from lstm_cli.render import train as view


def _result(dh_rel_after: list) -> dict:
    n = len(dh_rel_after)
    return {"status": "completed", "success": False, "task": "remember", "gap": n - 2, "model": "rnn",
            "seed": 0, "metric": "accuracy", "accuracy": 0.25, "criterion": "accuracy >= 0.99",
            "chance": 0.25, "steps": 10, "max_steps": 10, "evaluated_at": 10, "wall_time": 0.1,
            "heldout_loss": 1.4, "train_loss": 1.4, "run_dir": "runs/x",
            "gradient": {"carrier": "dh", "steps_back": list(range(n)), "steps_back_first_step": n - 1,
                         "dh_ratio_first_step_before": 1e-3, "dh_ratio_first_step": dh_rel_after[-1],
                         "dc_ratio_first_step_before": None, "dc_ratio_first_step": None,
                         "verdict_before": "stable", "verdict": "nan",
                         "dh_rel_before": [10.0 ** -k for k in range(n)], "dh_rel": dh_rel_after,
                         "dc_rel_before": None, "dc_rel": None}}


def test_nan_inf_and_zero_norms_are_shown_not_crashed_on():
    # as in a record: JSON keeps inf and nan as strings
    after = [1.0, 0.5, "inf", "nan", 0.0, 1e-300]
    result = _result(after)
    evaluations = [{"step": 0, "dh_rel": result["gradient"]["dh_rel_before"]}, {"step": 10, "dh_rel": after}]
    for colour in (True, False):
        buffer = io.StringIO()
        console = Console(file=buffer, width=100, force_terminal=colour, no_color=not colour)
        view.render_result(result, evaluations, console=console)
        text = buffer.getvalue()
        assert "nan" in text and "inf" in text


def _diverged() -> dict:
    """The record of ``train --task adding --gap 50 --model rnn:recurrent_scale=3 --optimizer sgd
    --clip 0`` (seed 0), as result.json stores it: its tanh units saturated before it diverged."""
    result = _result([1.0] + [0.0] * 49)
    result.update(status="diverged", steps=208, max_steps=500, diverged_at=208, diverged_loss="inf",
                  evaluated_at=200, model="rnn:recurrent_scale=3")
    result["gradient"].update(
        dh_rel_before=[1.0, 1.3] + [2.6e6] * 48, dh_ratio_first_step_before=2.6e6, dh_ratio_first_step=0.0,
        decades_before={"activation": -17.3, "recurrent": 23.4, "total": 6.1},
        decades={"activation": "-inf", "recurrent": 0.0, "total": "-inf"},
        activation_slope_before=0.33, activation_slope=0.0)
    return result


def render_text(result: dict, width: int = 200) -> str:
    buffer = io.StringIO()
    view.render_result(result, [], console=Console(file=buffer, width=width, no_color=True, force_terminal=False,
                                                   color_system=None))
    return " ".join(buffer.getvalue().replace("│", " ").split())  # the why cell wraps inside its box


def test_a_collapsed_gradient_is_explained_by_saturation_with_its_numbers():
    text = render_text(_diverged())
    assert "tanh' carries the loss" in text and "exactly 0" in text
    assert "mean tanh' 0, against 0.33 at init" in text and "|h| near 1" in text


def test_no_saturation_is_claimed_where_w_hh_carries_the_loss():
    result = _diverged()
    result["gradient"].update(decades={"activation": -0.5, "recurrent": -12.0, "total": -12.5},
                              dh_ratio_first_step=1e-13, activation_slope=0.3)
    text = render_text(result)
    assert "W_hh carries the loss" in text and "saturated" not in text


def test_divergence_has_one_step_count():
    text = render_text(_diverged())
    assert "DIVERGED at step 208" in text and "208 of 500" in text and "207" not in text


def test_profile_bars_grow_above_1():
    """Bars on a log scale on both sides of 1: 1.3 and 2.6e6 must not look the same."""
    grad = _diverged()["gradient"]
    ceiling = view.profile_ceiling(grad)
    assert ceiling == 1e7
    bars = [view._bar(v, ceiling=ceiling).plain.count("█") for v in (1e-16, 1e-8, 1.0, 1.3, 2.6e6, 1e7)]
    assert bars == sorted(bars) and bars[0] == 0 and bars[-1] == 8 and bars[2] < bars[4]
    assert "full at 1e+07, 1 at 70% of the bar" in render_text(_diverged())
