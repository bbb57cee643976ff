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
