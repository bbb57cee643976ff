"""One schema: the CLI, a scenario file, --set and the Python API accept and refuse the same
values with the same message (config.check is the one check behind all four)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from lstm_cli import api
from lstm_cli.cli import app
from lstm_cli.errors import BadInput

BASE = "description: one-schema test\ntask: remember\ngap: 5\nmodel: {kind: lstm, hidden: 4}\ngradients:\n  batch: 2\n"

# setting, CLI arguments, scenario YAML, --set text, API keyword arguments, expected message (None: valid)
CASES = [
    ("recurrent_scale=-1", ["--recurrent-scale", "-1", "-m", "lstm"], "model: {kind: lstm, hidden: 4, recurrent_scale: -1}",
     "model.recurrent_scale=-1", {"recurrent_scale": -1}, "model.recurrent_scale: must be > 0, got -1.0"),
    ("seed=-1", ["--seed", "-1"], "seed: -1", "seed=-1", {"seed": -1}, "seed: must be >= 0, got -1"),
    ("seed=2**32", ["--seed", str(2**32)], f"seed: {2**32}", f"seed={2**32}", {"seed": 2**32},
     f"seed: must be <= {2**32 - 1}, got {2**32}"),
    ("chrono=inf", ["--chrono", "inf", "-m", "lstm"], "model: {kind: lstm, hidden: 4, chrono: .inf}",
     "model.chrono=.inf", {"chrono": float("inf")}, "model.chrono: must be a finite number, got inf"),
    ("hidden=0", ["--hidden", "0"], "model: {kind: lstm, hidden: 0}", "model.hidden=0", {"hidden": 0},
     "model.hidden: must be >= 1, got 0"),
    ("gap=0", ["--gap", "0"], "gap: 0", "gap=0", {"gap": 0}, "gap: must be >= 1, got 0"),
    ("dtype=float16", ["--dtype", "float16"], "model: {kind: lstm, hidden: 4, dtype: float16}",
     "model.dtype=float16", {"dtype": "float16"}, "model.dtype: unknown value 'float16' (did you mean 'float64'?); choose one of: float64, float32"),
    ("seed=3", ["--seed", "3"], "seed: 3", "seed=3", {"seed": 3}, None),
    ("chrono=20", ["--chrono", "20", "-m", "lstm"], "model: {kind: lstm, hidden: 4, chrono: 20}",
     "model.chrono=20", {"chrono": 20}, None),
]
runner = CliRunner()


def outcome(result) -> tuple[int, str]:
    lines = result.stderr.strip().splitlines()
    return result.exit_code, (lines[-1] if lines else "")


def check(route: str, code: int, line: str, expected: str | None) -> None:
    if expected is None:
        assert code == 0, (route, line)
    else:
        assert code == 2 and line.endswith(": " + expected), (route, line)


@pytest.mark.parametrize("name, cli_args, yaml_line, set_text, api_kwargs, expected", CASES,
                         ids=[case[0] for case in CASES])
def test_every_route_gives_the_same_outcome_and_message(tmp_path, name, cli_args, yaml_line, set_text,
                                                        api_kwargs, expected):
    base = tmp_path / "base.yaml"
    base.write_text(BASE)
    changed = tmp_path / "changed.yaml"
    key = yaml_line.split(":")[0] + ":"
    lines = [yaml_line if line.startswith(key) else line for line in BASE.splitlines()]
    changed.write_text("\n".join(lines if yaml_line in lines else lines + [yaml_line]) + "\n")

    args = ["gradients", "--gap", "5", "--hidden", "4", "--batch", "2", "-f", "json", *cli_args]
    check("cli", *outcome(runner.invoke(app, args)), expected)
    check("scenario", *outcome(runner.invoke(app, ["run", str(changed), "-f", "json"])), expected)
    check("--set", *outcome(runner.invoke(app, ["run", str(base), "-f", "json", "--set", set_text])), expected)
    kwargs = {"task": "remember", "gap": 5, "batch": 2, "hidden": 4, "models": ["lstm"], **api_kwargs}
    if expected is None:
        api.probe_models(**kwargs)
    else:
        with pytest.raises(BadInput) as err:
            api.probe_models(**kwargs)
        assert str(err.value) == expected


def test_model_spec_fields_are_the_tables_model_rows():
    """A model setting is one row in config.FIELDS: ModelSpec's fields and defaults come from it."""
    import dataclasses

    from lstm_cli import config
    from lstm_cli.models import ModelSpec

    fields = {f.name: f.default for f in dataclasses.fields(ModelSpec)}
    assert list(fields) == ["kind", *config.MODEL_FIELDS]
    assert fields == {"kind": config.default("model.kind"),
                      **{name: field.default for name, field in config.MODEL_FIELDS.items()}}
