"""``lstm-demo gradients`` through Typer's CliRunner: JSON numbers, not table layout.

The JSON must equal the Python API's probe exactly (issue 3, acceptance 3 and 6);
bad input must give one line on stderr and exit 2 (acceptance 4).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lstm_cli import models, probes, tasks
from lstm_cli.cli import app
from lstm_cli.plain import jsonable

runner = CliRunner()


def run(*args: str, env: dict | None = None):
    return runner.invoke(app, ["gradients", *args], env=env)


def run_json(*args: str) -> dict:
    result = run(*args, "--format", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def api(model: str, gap: int = 50, batch: int = 64, seed: int = 0, task: str = "remember", **defaults) -> dict:
    """The Python API's probe, made plain the way the JSON writer does."""
    spec = models.parse_model(model, **defaults)
    profile = probes.probe_at_init(spec, tasks.get_task(task), gap, batch, seed)
    return json.loads(json.dumps(jsonable(profile.to_dict())))


# ---- acceptance 1-3: the numbers ----

def test_default_compares_rnn_and_lstm_and_equals_the_python_api():
    doc = run_json("--gap", "50")
    assert doc["settings"] == {"task": "remember", "gap": 50, "sequence_length": 52, "batch": 64,
                               "seed": 0, "from": None}
    assert [m["label"] for m in doc["models"]] == ["rnn", "lstm"]
    assert doc["models"][0] == api("rnn")  # every number, exactly
    assert doc["models"][1] == api("lstm")
    rnn, lstm = (m["steps"] for m in doc["models"])
    assert len(rnn["steps_back"]) == 52  # every step, not only the table's rows
    assert rnn["dh_rel"][50] < 1e-6  # acceptance 1: the RNN vanishes ...
    assert lstm["dc_rel"][50] > 1e-2  # ... the LSTM's cell state carries the gradient
    assert doc["models"][1]["model"]["forget_bias"] == models.DEFAULT_FORGET_BIAS


def test_recurrent_scale_makes_the_rnn_explode_and_keeps_the_lstm_as_reference():
    doc = run_json("--gap", "50", "--recurrent-scale", "3")
    rnn, lstm = doc["models"]
    assert rnn["model"]["recurrent_scale"] == 3.0 and rnn["model"]["init"] == "orthogonal"
    assert lstm["model"]["recurrent_scale"] == 1.0
    assert rnn["steps"]["dh_rel"][50] > 1e3  # acceptance 2
    assert rnn["summary"]["verdict"] == "exploding"
    assert rnn == api("rnn", recurrent_scale=3.0)
    assert lstm == api("lstm")


def test_exploding_is_said_in_words():
    result = run("--gap", "50", "--recurrent-scale", "3")
    assert result.exit_code == 0
    assert "EXPLODING" in result.stdout and "grows" in result.stdout


def test_repeated_models_with_shared_defaults():
    doc = run_json("--gap", "20", "--hidden", "8", "--batch", "8", "--seed", "3",
                   "-m", "lstm", "--model", "lstm:forget_bias=0,hidden=4", "-m", "rnn:init=orthogonal")
    assert [m["label"] for m in doc["models"]] == ["lstm:hidden=8", "lstm:hidden=4,forget_bias=0",
                                                  "rnn:hidden=8,init=orthogonal"]
    assert doc["models"][0] == api("lstm", gap=20, batch=8, seed=3, hidden=8)
    assert doc["models"][1] == api("lstm:forget_bias=0,hidden=4", gap=20, batch=8, seed=3, hidden=8)
    assert doc["models"][2] == api("rnn:init=orthogonal", gap=20, batch=8, seed=3, hidden=8)
    assert doc["models"][1]["summary"]["verdict"] == "vanishing"  # the closed forget gate, shown honestly


def test_with_models_the_recurrent_scale_is_every_models_default():
    doc = run_json("--gap", "10", "--batch", "4", "--recurrent-scale", "2", "-m", "lstm", "-m", "rnn")
    assert [m["model"]["recurrent_scale"] for m in doc["models"]] == [2.0, 2.0]


def test_other_tasks_and_float32():
    doc = run_json("--task", "adding", "--gap", "12", "--batch", "8", "--dtype", "float32")
    assert doc["settings"]["sequence_length"] == 12
    assert doc["models"][0] == api("rnn", task="adding", gap=12, batch=8, dtype="float32")


def test_csv_has_one_row_per_model_and_step():
    result = run("--gap", "10", "--batch", "4", "--format", "csv")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("label,kind,task,gap,verdict,steps_back,dh_mean")
    assert len(lines) == 1 + 2 * 12
    first_lstm = lines[1 + 12].split(",")
    assert first_lstm[:6] == ["lstm", "lstm", "remember", "10", "stable", "0"]
    assert float(lines[12].split(",")[6]) == api("rnn", gap=10, batch=4)["steps"]["dh_mean"][11]


def test_machine_formats_carry_no_colour_or_rich_text():
    result = run("--gap", "10", "--batch", "4", "--format", "json")
    assert "\x1b[" not in result.stdout and result.stderr == ""


# ---- acceptance 6: the table with NO_COLOR on a narrow terminal ----

@pytest.mark.parametrize("columns", ["40", "200"])
def test_table_with_no_color_on_a_narrow_terminal(columns):
    result = run("--gap", "50", env={"NO_COLOR": "1", "COLUMNS": columns})
    assert result.exit_code == 0, result.stderr
    assert "VANISHING" in result.stdout and "STABLE" in result.stdout
    assert "\x1b[" not in result.stdout
    assert "conveyor belt" in result.stdout


def test_rows_choose_the_steps_of_the_table():
    result = run("--gap", "50", "--rows", "0,25,51", env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.stderr
    rnn = api("rnn")["steps"]["dh_rel"]
    lines = [line.split() for line in result.stdout.splitlines()]
    steps = [words[0] for words in lines if len(words) > 2 and words[0].isdigit() and "e" in words[2]]
    assert steps == ["0", "25", "51"]
    assert f"{rnn[25]:.1e}" in result.stdout


# ---- acceptance 4: bad input ----

@pytest.mark.parametrize("args, words", [
    (["--gap", "-1"], "gap: must be >= 1, got -1"),
    (["--gap", "abc"], "Invalid value for '--gap'"),
    (["--model", "gru2"], "model.kind: unknown value 'gru2'"),
    (["--format", "xml"], "'xml' is not one of 'table', 'json', 'jsonl', 'csv'"),
    (["--hidden", "0"], "model.hidden: must be >= 1, got 0"),
    (["--task", "kopy"], "task: unknown value 'kopy' (did you mean 'copy'?)"),
    (["--from", "no/such/run"], "no checkpoint at no/such/run"),
    (["--rows", "0,99"], "outside 0..51"),
    (["--batch", "0"], "gradients.batch: must be >= 1, got 0"),
    (["--model", "lstm:forget_bias=x"], "model.forget_bias: must be a number, got the string 'x'"),
    (["--recurrent-scale", "nan"], "model.recurrent_scale: must be a finite number, got nan"),
    (["--plot", "flow.gif"], "use a file name ending in .png, .svg, .pdf"),
    (["--no-such-option"], "No such option"),
])
def test_bad_input_is_one_line_on_stderr_and_exit_2(args, words):
    result = run(*args)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("lstm-demo"), result.stderr
    assert words in lines[0]
    assert "Traceback" not in result.stderr


def test_bad_input_in_a_real_process_has_no_traceback():
    proc = subprocess.run([sys.executable, "-m", "lstm_cli", "gradients", "--gap", "-1"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lstm-demo: error: gap: must be"), proc.stderr
    assert proc.stdout == ""


# ---- --from RUN_DIR: a checkpoint written by runs' own writer ----

@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A run directory with an untrained checkpoint: the probe does not care whether it learned."""
    from lstm_cli.checkpoint import CHECKPOINT, save_checkpoint
    from lstm_cli.seeds import stream
    from lstm_cli.train import TrainConfig

    spec = models.ModelSpec(kind="lstm", hidden=6, forget_bias=1.0)
    task = tasks.get_task("adding")
    params = models.init_params(spec, task.input_size, task.output_size, stream(5, "params"))
    params["weight_hh"] *= 1.5  # not what a fresh init of this spec would give
    config = TrainConfig(task="adding", gap=16, model=spec, seed=5, probe_size=12)
    (tmp_path / "run").mkdir()
    save_checkpoint(tmp_path / "run" / CHECKPOINT, spec, params, config)
    return tmp_path / "run"


def probe_checkpoint(run_dir: Path, gap: int, batch: int, seed: int, task: str = "adding") -> dict:
    from lstm_cli.checkpoint import load_checkpoint
    from lstm_cli.seeds import stream

    checkpoint = load_checkpoint(run_dir)
    t = tasks.get_task(task)
    x, y = t.generate(stream(seed, "probe"), batch, gap)
    profile = probes.probe(checkpoint.spec, checkpoint.params, t, x, y, gap, label=checkpoint.spec.label())
    return json.loads(json.dumps(jsonable(profile.to_dict())))


def test_from_probes_the_checkpoint_on_its_own_task_gap_seed_and_probe_batch(run_dir):
    doc = run_json("--from", str(run_dir))
    assert doc["settings"] == {"task": "adding", "gap": 16, "sequence_length": 16, "batch": 12, "seed": 5,
                               "from": str(run_dir)}
    assert len(doc["models"]) == 1
    assert doc["models"][0] == probe_checkpoint(run_dir, gap=16, batch=12, seed=5)
    assert doc["models"][0]["model"]["forget_bias"] == 1.0


def test_from_with_overrides(run_dir):
    doc = run_json("--from", str(run_dir), "--gap", "30", "--batch", "3", "--seed", "9")
    assert doc["models"][0] == probe_checkpoint(run_dir, gap=30, batch=3, seed=9)
    table = run("--from", str(run_dir))
    assert table.exit_code == 0 and f"checkpoint {run_dir}" in table.stdout.replace("\n", "")
    assert "Trained from init: forget bias 1" in " ".join(table.stdout.split())


@pytest.mark.parametrize("args, words", [
    (["--hidden", "8"], "--hidden describes a fresh model"),
    (["-m", "rnn", "--forget-bias", "1"], "--model, --forget-bias describe a fresh model"),
    (["--task", "remember"], "was not made for task remember"),
])
def test_from_rejects_what_does_not_fit_the_checkpoint(run_dir, args, words):
    result = run("--from", str(run_dir), *args)
    assert result.exit_code == 2 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and words in result.stderr


def test_from_a_directory_without_checkpoint(tmp_path):
    result = run("--from", str(tmp_path))
    assert result.exit_code == 2
    assert "no checkpoint at" in result.stderr and len(result.stderr.splitlines()) == 1


# ---- help and start-up (acceptance 7's half that a test can check) ----

def test_help_documents_syntax_thresholds_and_examples():
    result = runner.invoke(app, ["gradients", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    for words in ("lstm:forget_bias=0", "rnn:init=orthogonal,recurrent_scale=3", "below 1e-3 vanishing",
                  "above 1e3 exploding", "--format json", "--rows", "--plot", "--from",
                  "it scales the RNN only"):
        assert words in text, words


def imported_after(code: str) -> set[str]:
    """Top-level packages imported by running ``code`` in a fresh interpreter."""
    script = ("import sys\nfrom lstm_cli.cli import app\ntry:\n    " + code +
              "\nexcept SystemExit:\n    pass\nprint(' '.join(sorted({m.split('.')[0] for m in sys.modules})),"
              " file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    return set(proc.stderr.split())


def test_help_does_not_import_numpy():
    assert "numpy" not in imported_after("app(['--help'])")
    assert "numpy" not in imported_after("app(['gradients', '--help'])")


def test_json_path_imports_no_rich_yaml_or_matplotlib():
    loaded = imported_after("app(['gradients', '--gap', '5', '--batch', '2', '--format', 'json'])")
    assert "numpy" in loaded  # the probe did run
    assert not {"rich", "yaml", "matplotlib"} & loaded


def test_cli_defaults_match_the_engine():
    import dataclasses
    import inspect

    from lstm_cli import cli

    options = {name: p.default for name, p in inspect.signature(cli.gradients).parameters.items()}
    engine = {f.name: f.default for f in dataclasses.fields(models.ModelSpec)}
    for name in ("init", "recurrent_scale", "forget_bias", "chrono", "activation", "dtype"):
        assert options[name] == engine[name], name
    assert options["hidden"] is None  # the task's hidden size (tasks.with_task_defaults), else the engine's


def test_copy_models_default_to_the_tasks_hidden_size_everywhere_unless_given(tmp_path):
    """--task copy without --hidden: 64 units in gradients, train and a scenario; given, it wins."""
    from lstm_cli import api, scenario
    from lstm_cli.train import TrainConfig

    profiles, _ = api.probe_models("copy", 5, ["lstm", "rnn:hidden=8"], batch=2)
    assert [p.model["hidden"] for p in profiles] == [tasks.COPY_HIDDEN, 8]
    profiles, _ = api.probe_models("remember", 5, ["lstm"], batch=2)
    assert profiles[0].model["hidden"] == models.ModelSpec().hidden
    assert api.train_config("gru", task="copy").model.hidden == tasks.COPY_HIDDEN
    assert api.train_config("lstm", {"hidden": 16}, task="copy").model.hidden == 16
    assert TrainConfig(task="copy").model.hidden == tasks.COPY_HIDDEN
    assert TrainConfig().model.hidden == models.ModelSpec().hidden
    (tmp_path / "c.yaml").write_text("task: copy\ngap: 5\ntrain: {steps: 1}\nsweep:\n  model: [lstm, 'lstm:hidden=8']\n")
    points = scenario.load(tmp_path / "c.yaml").points()
    assert [p.train_config().model.hidden for p in points] == [tasks.COPY_HIDDEN, 8]
    result = runner.invoke(app, ["gradients", "--task", "copy", "--gap", "5", "--batch", "2", "--format", "json"])
    assert result.exit_code == 0, result.stderr
    assert [m["model"]["hidden"] for m in json.loads(result.stdout)["models"]] == [tasks.COPY_HIDDEN] * 2


def test_readme_documents_the_command_and_every_json_field():
    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text(encoding="utf-8")
    section = (root / "docs" / "gradients.md").read_text(encoding="utf-8")  # the command's reference page
    # the tour's pasted tables are real: their last rows hold the probe's numbers
    vanishing, exploding = (readme.split(f"```console\n$ lstm-demo gradients --gap 50{extra}\n", 1)[1].split("```")[0]
                            for extra in ("", " --recurrent-scale 3 --rows 0,10,20,51"))
    assert "VANISHING" in vanishing and "rnn:" in exploding
    default = run_json("--gap", "50")["models"]
    scaled = run_json("--gap", "50", "--recurrent-scale", "3")["models"]
    for block, (rnn, lstm) in ((vanishing, default), (exploding, scaled)):
        last = next(line for line in block.splitlines() if line.strip().startswith("51 "))
        assert f"{rnn['steps']['dh_rel'][51]:.1e}" in last and f"{lstm['steps']['dc_rel'][51]:.1e}" in last
    doc = run_json("--gap", "5", "--batch", "2", "-m", "rnn", "-m", "lstm:chrono=10")
    fields = set(doc) | set(doc["settings"]) | set(doc["thresholds"])
    for model in doc["models"]:
        fields |= set(model) | set(model["model"]) | set(model["summary"]) | set(model["steps"])
    # the fields of the split are documented with their measurements in docs/explanations.md,
    # from which the README's gradients section is written
    explanations = (Path(__file__).resolve().parents[1] / "docs" / "explanations.md").read_text(encoding="utf-8")
    missing = sorted(f for f in fields if f not in section and f"`{f}`" not in explanations)
    assert not missing, f"neither README's gradients section nor docs/explanations.md names: {missing}"


def test_options_are_converted_to_their_types():
    import typer

    from lstm_cli import cli

    command = typer.main.get_command(cli.app).commands["gradients"]
    ctx = command.make_context("gradients", ["--gap", "7", "-m", "rnn", "-m", "lstm", "--recurrent-scale", "2"])
    assert ctx.params["gap"] == 7 and ctx.params["recurrent_scale"] == 2.0
    assert list(ctx.params["model"]) == ["rnn", "lstm"] and ctx.params["chrono"] is None


@pytest.mark.parametrize("preset, expected", [(None, "1"), ("2", "1")])
def test_one_blas_thread_whatever_the_user_set(preset, expected):  # same bits as a sweep worker (issue 10)
    import os

    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    if preset is not None:
        env["OPENBLAS_NUM_THREADS"] = preset
    script = ("import os, sys\nfrom lstm_cli.cli import app\ntry:\n"
              "    app(['gradients', '--gap', '3', '--batch', '2', '--format', 'json'])\n"
              "except SystemExit:\n    pass\nprint(os.environ['OPENBLAS_NUM_THREADS'], file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert proc.stderr.strip() == expected


def test_no_color_on_a_forced_terminal_keeps_bold_but_drops_colour():
    colour = re.compile(r"\x1b\[[0-9;]*(3[0-9]|9[0-7])m")  # a foreground colour code
    coloured = run("--gap", "20", env={"FORCE_COLOR": "1", "COLUMNS": "40"})
    assert colour.search(coloured.stdout)  # the check below can fail
    plain = run("--gap", "20", env={"FORCE_COLOR": "1", "NO_COLOR": "1", "COLUMNS": "40"})
    assert plain.exit_code == 0
    assert not colour.search(plain.stdout)
    text = re.sub(r"\x1b\[[0-9;]*m", "", plain.stdout)
    assert "VANISHING" in text and "STABLE" in text
