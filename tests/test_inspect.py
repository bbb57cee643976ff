"""lstm-demo inspect: the numbers per step, the unit choice, and sentences whose every number is printed.

Tiny models trained in the test (remember, gap 10, 8 units: under a second each, every seed
0-4 learns), untrained checkpoints for the honest words, and independent recomputations
(the ablation by zeroing a head column, eta^2 by class means) of what the sentences claim.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from lstm_cli import api, inspect as inspecting, models
from lstm_cli.checkpoint import save_checkpoint
from lstm_cli.cli import app
from lstm_cli.runs import run_training
from lstm_cli.seeds import stream
from lstm_cli.tasks import get_task
from lstm_cli.train import TrainConfig

NUMBER = re.compile(r"-?\d+(?:\.\d+)?%?")


def _train(out, name, seed=0, model="lstm", task="remember", gap=10, hidden=8, steps=1500):
    cfg = api.train_config(model, {"hidden": hidden}, task=task, gap=gap, seed=seed, steps=steps)
    run_training(cfg, out, name=name)
    return out / name


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    return {seed: _train(out, f"lstm{seed}", seed=seed) for seed in range(5)}


def _untrained(tmp_path, model="lstm", task="remember", gap=10, hidden=8):
    cfg = api.train_config(model, {"hidden": hidden}, task=task, gap=gap, seed=0).resolved()
    spec = cfg.model
    t = get_task(task)
    params = models.init_params(spec, t.input_size, t.output_size, stream(0, "params"))
    path = tmp_path / f"{model}-untrained"
    path.mkdir()
    save_checkpoint(path / "checkpoint.npz", spec, params, cfg)
    return path


def _heldout(run_dir):
    from lstm_cli.checkpoint import load_checkpoint

    checkpoint = load_checkpoint(run_dir)
    cfg = checkpoint.config.resolved()
    task = get_task(cfg.task)
    x, y = task.generate(stream(cfg.seed, "heldout"), cfg.eval_size, cfg.gap)
    return checkpoint, task, x, y


def _check_sentence_numbers(inspection):
    """Every number in a unit's sentence is one of its printed facts, and each fact is its value."""
    for unit in inspection.units:
        printed = set(unit.facts.values())
        numbers = NUMBER.findall(unit.sentence.replace(f"Unit {unit.unit} ", "Unit "))
        assert numbers, unit.sentence
        for number in numbers:
            assert number in printed, (number, unit.sentence, unit.facts)
        v, f = unit.values, unit.facts
        info, answer, held = int(f["info_step"]), int(f["answer_step"]), int(f["held_steps"])
        span = slice(info + 1, info + 1 + held)
        if "i_info" in f:
            assert f["i_info"] == inspecting.fixed(v["i"][info])
        if "f_gap_min" in f:
            assert float(f["f_gap_min"]) <= v["f"][span].min() < float(f["f_gap_min"]) + 1e-3
            assert float(f["belt"]) == pytest.approx(np.prod(v["f"][span]), rel=5e-3)
        if "o_answer" in f:
            assert f["o_answer"] == inspecting.fixed(v["o"][answer])
        if "slope_gap_max" in f:
            assert float(f["slope_gap_max"]) - 1e-3 < v["slope"][span].max() <= float(f["slope_gap_max"])
        assert f["h_answer" if "h_answer" in f else "c_answer"] == inspecting.fixed(
            v["h" if "h_answer" in f else "c"][answer])


def _eta_squared(memory, labels):
    mean = memory.mean()
    between = sum((labels == k).mean() * (memory[labels == k].mean() - mean) ** 2 for k in np.unique(labels))
    return between / memory.var()


@pytest.mark.parametrize("seed", range(5))
def test_claims_hold_on_trained_remember_models(runs, seed):
    inspection = api.inspect_run(runs[seed], index=seed)
    assert inspection.learned and "This model learned the task" in inspection.summary[0]
    _check_sentence_numbers(inspection)
    checkpoint, task, x, y = _heldout(runs[seed])
    out, cache = models.forward(checkpoint.params, x, task.answer_steps, spec=checkpoint.spec)
    cells = cache.core.cells[1:].transpose(1, 0, 2)  # (B, T, H), independent of inner_values
    answer = x.shape[1] - 1
    stores = 0
    for unit in inspection.units:
        share = _eta_squared(cells[:, answer, unit.unit], y[:, 0])
        assert unit.facts["stored_at_answer"] == f"{int(share * 100 + 1e-9)}%"
        assert unit.sentence.startswith(f"Unit {unit.unit} {'stores' if share >= 0.5 else 'does not store'} ")
        stores += share >= 0.5
    assert stores >= 1  # a model that answers every held-out sequence holds the symbol somewhere
    # the symbol row shows the sequence: its first step is the symbol to recall, its last the query
    assert inspection.symbols[0] == "ABCD"[inspection.target[0]] and inspection.symbols[-1] == "?"


def test_units_are_picked_by_an_exact_ablation(runs):
    inspection = api.inspect_run(runs[0], units=8)
    checkpoint, task, x, y = _heldout(runs[0])

    def mean_log_p(params):
        out, _ = models.forward(params, x, task.answer_steps, spec=checkpoint.spec)
        shifted = out[:, 0] - out[:, 0].max(axis=1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        return log_p[np.arange(len(y)), y[:, 0]].mean()

    base = mean_log_p(checkpoint.params)
    drops = []
    for unit in inspection.units:
        params = dict(checkpoint.params, **{"head.weight": checkpoint.params["head.weight"].copy()})
        params["head.weight"][:, unit.unit] = 0.0  # the unit's h no longer reaches the answer
        drops.append(base - mean_log_p(params))
        assert unit.contribution == pytest.approx(drops[-1], rel=1e-9, abs=1e-12)
    assert drops == sorted(drops, reverse=True)
    assert len({u.unit for u in inspection.units}) == 8


@pytest.mark.parametrize("model", ["lstm", "gru", "rnn", "lstm:forget_gate=false", "lstm:coupled=true"])
def test_untrained_models_say_they_did_not_learn(tmp_path, model):
    inspection = api.inspect_run(_untrained(tmp_path, model=model), index=2, units=3)
    assert not inspection.learned
    assert inspection.summary[0].startswith("This model did not learn the task: accuracy ")
    assert f"{inspection.heldout_value:.3g}" in inspection.summary[0]
    _check_sentence_numbers(inspection)
    kind = model.split(":")[0]
    expected = {"lstm": {"i", "o", "c", "h"}, "gru": {"z", "r", "h"}, "rnn": {"pre", "slope", "h"}}[kind]
    assert expected <= set(inspection.quantities)
    if kind == "rnn":
        assert any("The vanilla RNN has no gates" in s for s in inspection.summary)
        slope = inspection.units[0].values["slope"]
        assert np.allclose(slope, 1 - inspection.units[0].values["h"] ** 2)
    if model == "lstm:forget_gate=false":
        assert "f" not in inspection.quantities and "has no forget gate" in inspection.units[0].sentence


@pytest.mark.parametrize("task,gap", [("adding", 12), ("copy", 3), ("agreement", 6), ("temporal-order", 6)])
def test_other_tasks(tmp_path, task, gap):
    inspection = api.inspect_run(_untrained(tmp_path, task=task, gap=gap), index=1, units=2)
    _check_sentence_numbers(inspection)
    t = get_task(task)
    assert inspection.answer_steps == [a % inspection.steps for a in t.answer_steps]
    assert len(inspection.symbols) == t.length(gap)
    if task == "adding":
        assert [s for s, c in enumerate(inspection.symbols) if c == "*"] == inspection.info_steps


def test_cli_formats_and_terminal_width(runs, monkeypatch):
    runner = CliRunner()
    result = runner.invoke(app, ["inspect", str(runs[1]), "--index", "3", "--format", "json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["index"] == 3 and len(document["units"]) == 4
    assert all(len(u["values"]["f"]) == document["steps"] for u in document["units"])

    result = runner.invoke(app, ["inspect", str(runs[1]), "--format", "csv", "--units", "2"])
    lines = result.stdout.splitlines()
    assert lines[0] == "unit,step,symbol,role,stored,i,f,o,c,h" and len(lines) == 1 + 2 * 12

    for columns in ("30", "60", "200"):
        monkeypatch.setenv("COLUMNS", columns)
        result = runner.invoke(app, ["inspect", str(runs[1])])
        assert result.exit_code == 0, result.output
        heat = [line for line in result.stdout.splitlines() if line.startswith(("input ", "unit "))]
        assert heat and all(len(line.rstrip()) <= int(columns) for line in heat[:21])
        table = api.inspect_run(runs[1])
        for unit in table.units:  # every number of the sentences is in the printed table
            for value in unit.facts.values():
                assert value in result.stdout
        words = " ".join(result.stdout.split())
        assert all(" ".join(s.split()) in words for s in table.sentences)


def test_window_keeps_information_and_answer_steps():
    from lstm_cli.render.inspect import window

    for steps, keep, width in [(202, [0, 201], 40), (61, [0, 3, 40, 60], 20), (12, [0, 11], 40), (500, [250], 9)]:
        shown = window(steps, keep, width)
        assert len(shown) <= width
        assert all(k in shown for k in keep)
        numbers = [t for t in shown if t is not None]
        assert numbers == sorted(set(numbers))
        if steps <= width:
            assert shown == list(range(steps))


@pytest.mark.parametrize("args,words", [
    (["--index", "256"], "--index must be a held-out sequence of the run, 0 to 255"),
    (["--index", "-1"], "--index must be a held-out sequence"),
    (["--units", "0"], "--units must be an integer >= 1"),
    (["--format", "yaml"], "'yaml' is not one of 'table', 'json', 'jsonl', 'csv'"),
])
def test_bad_input_is_one_line_exit_2(runs, args, words):
    result = CliRunner().invoke(app, ["inspect", str(runs[0]), *args])
    assert result.exit_code == 2
    assert words in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_missing_run_is_one_line_exit_2(tmp_path):
    result = CliRunner().invoke(app, ["inspect", str(tmp_path / "nothing")])
    assert result.exit_code == 2 and "no checkpoint at" in result.stderr


def test_plot_labels_and_fonts(runs, tmp_path):
    pytest.importorskip("matplotlib")
    from lstm_cli.render import inspect as view

    inspection = api.inspect_run(runs[0])
    axes = view.plot_inspection(inspection, tmp_path / "inspect.svg")
    assert (tmp_path / "inspect.svg").stat().st_size > 0
    assert [ax.get_ylabel().split("\n")[0] for ax in axes] == [
        "input gate i", "forget gate f", "output gate o", "cell state c", "output h"]
    assert axes[-1].get_xlabel().startswith("time step")
    assert "learned" in axes[0].figure.get_suptitle()
    for ax in axes:
        assert ax.yaxis.label.get_fontsize() >= 10
        assert all(t.get_fontsize() >= 10 for t in ax.get_xticklabels() + ax.get_yticklabels())
        assert len(ax.get_lines()) == len(inspection.units)
    assert axes[1].get_ylim() == pytest.approx((-0.05, 1.05))
    assert inspection.answer_steps[0] in axes[-1].get_xticks()


def test_a_run_without_checkpoint_says_why(tmp_path):
    import json

    run = tmp_path / "diverged"
    run.mkdir()
    (run / "result.json").write_text(json.dumps({"status": "diverged", "steps": 207, "diverged_at": 208}))
    result = CliRunner().invoke(app, ["inspect", str(run)])
    assert result.exit_code == 2
    assert "the run's status is diverged (step 208) and it kept no checkpoint" in result.stderr


def test_an_ascii_terminal_gets_ascii_glyphs_and_no_question_marks_but_the_query(runs):
    import io

    from rich.console import Console

    from lstm_cli.render import inspect as view

    inspection = api.inspect_run(runs[0], units=1)
    stream = io.TextIOWrapper(io.BytesIO(), encoding="ascii", errors="replace")
    view.render(inspection, Console(file=stream, width=120, color_system=None))
    stream.seek(0)
    text = stream.read()
    heat = [line for line in text.splitlines() if line.startswith(("input ", "unit "))]
    assert heat[0].rstrip().endswith("?") and heat[0].count("?") == 1  # only the query step
    assert all(c in view.RAMP_ASCII for line in heat[1:] for c in line[len(line) - inspection.steps:])
    assert "+/-" in text


def test_a_path_with_brackets_is_printed_as_it_is(runs, tmp_path):
    import shutil

    odd = tmp_path / "[bold]run[/bold]"
    shutil.copytree(runs[0], odd)
    result = CliRunner().invoke(app, ["inspect", str(odd), "--units", "1"])
    assert result.exit_code == 0, result.stderr
    assert str(odd) in result.stdout


@pytest.mark.parametrize("columns", ["40", "57", "80", "200"])
def test_the_step_ruler_names_the_answer_step(runs, monkeypatch, columns):
    monkeypatch.setenv("COLUMNS", columns)
    result = CliRunner().invoke(app, ["inspect", str(runs[2]), "--units", "1"])
    lines = result.stdout.splitlines()
    ruler = lines[next(k for k, line in enumerate(lines) if line.startswith("input ")) + 1]
    assert ruler.startswith("step ")
    assert ruler.split()[-1] == "11" and "0" in ruler.split()[1:]  # remember gap 10: answer at step 11
