"""Scenario files: the strict schema, YAML 1.1 traps, --set overrides, grid expansion.

Every malformed file (tests/data/) and every bad ``--set`` must give exactly
one stderr line naming the file and line (where there is one) and the key,
exit code 2, and no traceback (issue 5, acceptance 3).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from lstm_cli import scenario as scenarios
from lstm_cli.cli import app

DATA = Path(__file__).parent / "data"
BUNDLED = Path(__file__).resolve().parent.parent / "scenarios"
runner = CliRunner()

# file -> (line, the key or phrase the message must name)
MALFORMED = {
    "typo_key": (4, "train.step: unknown setting (did you mean 'steps'?)"),
    "typo_top": (2, "tsak: unknown setting 'tsak' (did you mean 'task'?)"),
    "wrong_type_gap": (2, "gap: must be an integer, got the string 'fifty'"),
    "negative_gap": (2, "gap: must be >= 1, got -5"),
    "duplicate_key": (5, "gap: duplicate key (first given on line 2)"),
    "empty": (1, "the scenario file is empty"),
    "only_comments": (1, "the scenario file is empty"),
    "tab_indent": (3, "a tab in the indentation"),
    "unknown_model": (2, "model.kind: unknown value 'transformer'"),
    "unknown_task": (2, "task: unknown value 'remembr' (did you mean 'remember'?)"),
    "sweep_unknown_key": (5, "sweep.gapp: cannot sweep over this: unknown setting 'gapp' (did you mean 'gap'?)"),
    "optimizer_no": (3, "train.optimizer: unknown value 'no'"),
    "lr_zero": (3, "train.lr: must be > 0"),
    "lr_quoted": (3, "train.lr: must be a number, got the string '1e-3'"),
    "nothing_to_run": (1, "nothing to run"),
    "sweep_scalar": (5, "sweep.seed: a sweep axis needs a list of values"),
    "model_typo": (2, "model.forget_bais: unknown model setting (did you mean 'forget_bias'?)"),
    "model_hidden_float": (2, "model.hidden: must be an integer, got 8.5"),
    "not_a_mapping": (1, "must be a mapping of settings"),
    "unclosed_list": (4, "YAML syntax"),
    "gap_below_task_min": (3, "gap: must be >= 2 for task adding, got 1"),
    "momentum_one": (4, "train.momentum: must be < 1"),
    "steps_bool": (3, "train.steps: must be an integer, got true"),
    "sweep_repeat": (5, "sweep.seed: the value 1 is listed twice"),
    "sweep_missing_part": (5, "gradients.batch: the scenario has no gradients: section"),
}


def one_error_line(result) -> str:
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert result.stdout == ""
    return lines[0]


def test_every_data_file_is_covered():
    assert sorted(p.stem for p in DATA.glob("*.yaml")) == sorted(MALFORMED)
    assert len(MALFORMED) >= 15


@pytest.mark.parametrize("name", sorted(MALFORMED))
@pytest.mark.parametrize("command", [["sweep", "--dry-run"], ["run"]])
def test_malformed_file_gives_one_line_with_file_line_and_key(name, command):
    line, phrase = MALFORMED[name]
    path = DATA / f"{name}.yaml"
    message = one_error_line(runner.invoke(app, [command[0], str(path), *command[1:]]))
    assert message.startswith(f"lstm-demo: error: {path}:{line}: "), message
    assert phrase in message


SCENARIO = """\
description: a small valid scenario
task: remember
gap: 5
model: {kind: lstm, hidden: 8}
train:
  steps: 10
  lr: 1e-3
sweep:
  model: [rnn, lstm]
  seed: 0..2
"""


@pytest.fixture
def small(tmp_path) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(SCENARIO)
    return path


BAD_SETS = {
    "trian.lr=0.1": "unknown setting 'trian.lr' (did you mean 'train.lr'?)",
    "train.lr=fast": "train.lr: must be a number, got the string 'fast'",
    "gap=-3": "gap: must be >= 1, got -3",
    "seed=4..1": "seed: bad range '4..1'",
    "steps": "expected key=value",
    "model=transformer": "model.kind: unknown value 'transformer'",
    "model=lstm:forget_bais=1": "unknown model setting 'forget_bais' (did you mean 'forget_bias'?)",
    "batch=8": "ambiguous setting 'batch': say gradients.batch or train.batch",
    "gradients.batch=8": "gradients.batch: the scenario has no gradients: section",
    "gap=[5, 5]": "gap: the value 5 is listed twice",
    "task=adding": "run model=rnn,seed=0: ",  # gap 5 is fine for adding; its loss is mse: still valid
}


@pytest.mark.parametrize("text", sorted(set(BAD_SETS) - {"task=adding"}))
def test_bad_set_gives_one_line_naming_the_option(small, text):
    message = one_error_line(runner.invoke(app, ["sweep", str(small), "--dry-run", "--set", text]))
    assert message.startswith(f"lstm-demo: error: --set {text}: "), message
    assert BAD_SETS[text] in message


def test_set_of_a_task_whose_min_gap_the_gap_breaks(small):
    message = one_error_line(runner.invoke(app, ["sweep", str(small), "--list-runs",
                                                 "--set", "task=adding", "--set", "gap=1"]))
    assert "--set gap=1: gap: must be >= 2 for task adding, got 1" in message


def test_several_problems_give_one_line_each(tmp_path):
    path = tmp_path / "many.yaml"
    path.write_text("gapp: 5\ntrain:\n  steps: -1\n  lr: abc\n")
    result = runner.invoke(app, ["run", str(path)])
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert [line.split(": ")[2] for line in lines] == [f"{path}:1", f"{path}:3", f"{path}:4"]


def test_missing_file_is_one_line():
    message = one_error_line(runner.invoke(app, ["run", "no-such-scenario.yaml"]))
    assert "no-such-scenario.yaml: no such scenario file or bundled scenario" in message


def test_unknown_bundled_name_suggests_the_closest():
    message = one_error_line(runner.invoke(app, ["run", "vanishng"]))
    assert "did you mean 'vanishing'?" in message


# ---- YAML 1.1 traps ----

def test_yaml_1_1_traps_are_not_inherited():
    scenario = scenarios.parse("description: no\ntask: remember\ngap: 010\n"
                               "train: {lr: 1e-3, optimizer: adam, clip: 5E+0}\n", "t.yaml")
    assert scenario.description == "no"  # not False
    assert scenario.settings["train.lr"] == 0.001 and isinstance(scenario.settings["train.lr"], float)
    assert scenario.settings["gap"] == 10  # not octal 8
    assert scenario.settings["train.clip"] == 5.0


@pytest.mark.parametrize("word", ["yes", "no", "on", "off", "y", "n"])
def test_yes_no_on_off_are_strings(word):
    with pytest.raises(scenarios.ScenarioError) as err:
        scenarios.parse(f"model: {word}\ntrain: {{}}\n", "t.yaml")
    assert f"t.yaml:1: model.kind: unknown value '{word}'" in str(err.value)


def test_true_where_a_string_is_expected_hints_at_quoting():
    with pytest.raises(scenarios.ScenarioError) as err:
        scenarios.parse("task: true\ntrain: {}\n", "t.yaml")
    assert str(err.value) == "t.yaml:1: task: must be a string, got true (quote it if you meant a string)"


def test_a_bare_section_means_every_default():
    scenario = scenarios.parse("train:\n", "t.yaml")
    config = scenario.points()[0].train_config()
    assert (config.task, config.gap, config.seed, config.model.kind) == ("remember", 50, 0, "lstm")


# ---- the grid ----

def test_grid_order_keys_and_configs(small):
    scenario = scenarios.load(small)
    points = scenario.points()
    assert [p.key for p in points] == ["model=rnn,seed=0", "model=rnn,seed=1", "model=rnn,seed=2",
                                       "model=lstm,seed=0", "model=lstm,seed=1", "model=lstm,seed=2"]
    assert [p.index for p in points] == list(range(6))
    config = points[4].train_config()
    assert (config.model.kind, config.model.hidden, config.seed, config.lr, config.steps) == \
        ("lstm", 8, 1, 0.001, 10)
    # a model value in the sweep is laid over the scenario's model: the RNN keeps hidden 8
    assert points[0].train_config().model.hidden == 8


def test_set_single_value_replaces_an_axis_and_a_list_makes_one(small):
    scenario = scenarios.load(small, ["seed=3", "train.lr=0.5", "gap=[5, 10]"])
    assert list(scenario.axes) == ["model", "gap"]
    keys = [p.key for p in scenario.points()]
    assert keys == ["model=rnn,gap=5", "model=rnn,gap=10", "model=lstm,gap=5", "model=lstm,gap=10"]
    config = scenario.points()[3].train_config()
    assert (config.seed, config.lr, config.gap) == (3, 0.5, 10)


def test_set_leaf_names_ranges_and_model_lists(small):
    scenario = scenarios.load(small, ["steps=7", "seed=0..4:2", "model=lstm:hidden=4,forget_bias=0,rnn"])
    assert scenario.axes["seed"] == [0, 2, 4]
    models = scenario.axes["model"]
    assert models == [{"kind": "lstm", "hidden": 4, "forget_bias": 0.0}, {"kind": "rnn"}]
    point = scenario.points()[0]
    assert point.key == "model=lstm:hidden=4+forget_bias=0,seed=0"  # the axes keep the file's order
    spec = point.model_spec()
    assert (spec.kind, spec.hidden, spec.forget_bias, point.train_config().steps) == ("lstm", 4, 0.0, 7)


def test_identical_runs_are_kept_once(tmp_path):
    scenario = scenarios.parse("train: {}\nsweep:\n  model: [rnn, lstm]\n  forget_bias: [0, 3]\n", "t.yaml")
    # the RNN has no forget gate: rnn x {0, 3} is one run
    assert [p.key for p in scenario.points()] == ["model=rnn,forget_bias=0", "model=lstm,forget_bias=0",
                                                  "model=lstm,forget_bias=3"]


def test_index_out_of_range_is_bad_input(small):
    message = one_error_line(runner.invoke(app, ["run", str(small), "--index", "6"]))
    assert "--index 6 is out of range: small has 6 run(s), indices 0..5" in message


# ---- bundled scenarios ----

def test_bundled_scenarios_are_found_and_described():
    entries = scenarios.bundled()
    assert [name for name, _, _ in entries] == ["adding-100", "agreement", "exploding", "forget-gate",
                                                "long-lag", "remember-gap", "tanh-saturation", "vanishing", "variants"]
    for name, path, description in entries:
        assert path.parent == BUNDLED
        assert description and "\n" not in description, name
        scenario = scenarios.load(name)  # by name, validated
        assert scenario.description == description
        assert path.read_text().lstrip().startswith("#"), f"{name} must open with a comment"


def test_scenarios_command_lists_every_bundled_one():
    result = runner.invoke(app, ["scenarios"])
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()  # a header, its rule, then one line per scenario (a pipe: full width)
    assert lines[0].split() == ["name", "description", "path"] and set(lines[1]) == {"─"}
    assert len(lines) == 2 + 9
    assert lines[-2].split()[0] == "vanishing" and "gap 50" in lines[-2]


def test_remember_gap_is_the_acceptance_grid():
    points = scenarios.load("remember-gap").points()
    assert len(points) == 50
    assert {p.gap for p in points} == {5, 10, 20, 50, 100}
    assert {p.model_spec().kind for p in points} == {"rnn", "lstm"}
    assert {p.seed for p in points} == set(range(5))


def test_long_lag_runs_are_the_documented_commands():
    from lstm_cli.models import parse_model
    from lstm_cli.train import TrainConfig

    points = {p.key: p for p in scenarios.load("long-lag").points()}
    assert len(points) == 4 * 3 * 5
    # docs/long-lag.md measured e.g. `lstm-demo train --gap 1000 -m lstm:chrono=1000,dtype=float32 --lr 3e-3`
    commands = {"rnn": "rnn:dtype=float32", "lstm": "lstm:dtype=float32",
                "lstm:chrono=1000": "lstm:chrono=1000,dtype=float32"}
    for gap in (100, 200, 500, 1000):
        for key, model in commands.items():
            for seed in range(5):
                measured = TrainConfig(gap=gap, model=parse_model(model), lr=3e-3, seed=seed)
                run = points[f"gap={gap},model={key},seed={seed}"]
                assert run.train_config().resolved() == measured.resolved()


def test_float_keys_keep_full_precision_and_stay_short():
    scenario = scenarios.parse("train: {}\nsweep:\n  lr: [0.1, 0.10000001, 1e-3]\n", "t.yaml")
    assert [p.key for p in scenario.points()] == ["lr=0.1", "lr=0.10000001", "lr=0.001"]


def test_set_model_keeps_an_axis_over_one_model_setting():
    scenario = scenarios.load("forget-gate", ["model=lstm:hidden=4"])
    assert scenario.axes == {"model.forget_bias": [0.0, 3.0]}
    assert [p.model_spec().hidden for p in scenario.points()] == [4, 4]


def test_a_reduced_sweep_has_the_full_sweeps_keys():
    full = {p.key: p.train_config() for p in scenarios.load("remember-gap").points()}
    reduced = scenarios.load("remember-gap", ["seed=3..4", "gap=[100, 5]"]).points()
    assert [p.key for p in reduced][:3] == ["gap=100,model=rnn,seed=3", "gap=100,model=rnn,seed=4",
                                            "gap=100,model=lstm,seed=3"]
    assert all(full[p.key] == p.train_config() for p in reduced)  # so --resume can share records


def test_bundled_scenarios_are_found_where_a_wheel_installs_them(tmp_path, monkeypatch):
    import importlib

    scenario_module = importlib.import_module("lstm_cli.scenario.bundled")  # the module, not the function

    (tmp_path / "site" / "lstm_cli").mkdir(parents=True)  # a package with no scenarios/ beside it
    shared = tmp_path / "prefix" / "share" / "lstm-demo" / "scenarios"
    shared.mkdir(parents=True)
    (shared / "mine.yaml").write_text("description: from the wheel\ntrain: {}\n")
    monkeypatch.setattr(scenario_module, "__file__", str(tmp_path / "site" / "lstm_cli" / "scenario" / "bundled.py"))
    monkeypatch.setattr("sys.prefix", str(tmp_path / "prefix"))
    assert scenario_module.bundled_dir() == shared
    assert [(name, text) for name, _, text in scenario_module.bundled()] == [("mine", "from the wheel")]
