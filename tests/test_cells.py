"""One battery for every registered cell (lstm_cli/cells), like scikit-learn's parametrize_with_checks.

Each check runs for every kind in the registry and every model text its cell lists in
``examples`` (the LSTM's variants, the relu RNN...), so a new cell gets all of it by
being registered: the float64 gradient check, the torch check where PyTorch has the
cell, the fast kernel against its plain reference, the split of each step back adding
up to the total, the memory estimate against the measured peak, the explanation's
label and cause, the checkpoint round trip, and the kind in `gradients`, `train` and a
sweep (tiny sizes).
"""

from __future__ import annotations

import json
import math
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from conftest import B, D, H, T, assert_gradients_match, model_loss, numerical_gradient, relative_error
from typer.testing import CliRunner

from lstm_cli import cells, checkpoint, config, explain, losses, models, probes, tasks
from lstm_cli.cli import app
from lstm_cli.printed import significant

TEXTS = [text for kind in cells.NAMES for text in (kind, *cells.get(kind).examples)]
K = 3
GRAD_TOL = 1e-6  # centred differences of the doubled weights: a wrong term is off by O(1), rounding by <1e-7
ENV = {"COLUMNS": "200", "NO_COLOR": "1"}
runner = CliRunner()


def spec_of(text: str, **settings) -> models.ModelSpec:
    return models.parse_model(text, hidden=H, **settings)


def scaled_params(spec, seed: int, scale: float = 2.0) -> dict[str, np.ndarray]:
    """The cell's init with its weights doubled, so every term of the chain rule matters."""
    params = models.init_params(spec, D, K, np.random.default_rng(seed))
    return {k: v * scale if "weight" in k else v for k, v in params.items()}


def test_the_battery_covers_every_registered_cell():
    assert {text.partition(":")[0] for text in TEXTS} == set(cells.NAMES) == set(config.KINDS)
    for kind in cells.NAMES:
        cell = cells.get(kind)
        assert cell.name == kind and cell.label and cell.gate_count() >= 1
        assert (cell.split_names is None) != (cell.direct_gate is None), \
            f"{kind}: a cell reports either a split into two causes or a direct path"


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("answer_steps", [(-1,), (1, -1)])
def test_float64_gradients_match_centred_differences(text, answer_steps):
    spec = spec_of(text)
    params = scaled_params(spec, seed=11)
    rng = np.random.default_rng(12)
    x = rng.standard_normal((B, T, D))
    y = rng.integers(0, K, size=(B, len(answer_steps)))
    out, cache = models.forward(params, x, answer_steps=answer_steps, spec=spec)
    _, dout = losses.loss_and_grad("cross_entropy", out, y, reduction="mean")
    grads = models.backward(params, cache, dout)
    assert set(grads.params) == set(params)
    # relu: a small step, so that the 6th-order stencil (+-3 steps) stays on one side of the kink
    step = 1e-4 if getattr(spec, "activation", "tanh") == "relu" and "activation" in spec.cell.settings else 5e-3
    for name, value in params.items():
        numerical = numerical_gradient(lambda: model_loss(params, x, y, answer_steps, "cross_entropy", spec),
                                       value, step=step)
        assert_gradients_match(name, numerical, grads.params[name], tol=GRAD_TOL)


@pytest.mark.parametrize("text", TEXTS)
def test_init_shapes_are_what_the_cell_declares(text):
    spec = spec_of(text)
    params = models.init_params(spec, D, K, np.random.default_rng(0))
    assert {k: v.shape for k, v in params.items()} == models.param_shapes(spec, D, K)
    assert all(v.dtype == np.float64 for v in params.values())
    again = models.init_params(spec, D, K, np.random.default_rng(0))
    assert all(np.array_equal(params[k], again[k]) for k in params)  # same seed, same numbers


@pytest.mark.parametrize("text", TEXTS)
def test_torch_computes_the_same_where_pytorch_has_the_cell(text):
    spec = spec_of(text)
    cell = spec.cell
    module = cell.torch_module(spec, D)
    if module is None:
        pytest.skip(f"PyTorch has no module for {text} (the cell's torch_module says so)")
    torch = pytest.importorskip("torch")
    params = scaled_params(spec, seed=13)
    module.load_state_dict({k: torch.tensor(v) for k, v in cell.torch_state(params).items()})
    rng = np.random.default_rng(14)
    x = rng.standard_normal((B, T, D))
    h_torch, _ = module(torch.tensor(x))
    out, cache = models.forward(params, x, answer_steps=tuple(range(T)), spec=spec)
    h_ours = cache.h.transpose(1, 0, 2)
    assert relative_error(h_torch.detach().numpy(), h_ours) < 1e-10
    w = rng.standard_normal((B, T, H))  # the loss sum_t w_t . h_t, a gradient at every step
    (h_torch * torch.tensor(w)).sum().backward()
    grads = cell.backward(params, cache.core, np.ascontiguousarray(w.transpose(1, 0, 2)))
    for name, value in cell.torch_state(grads.params).items():
        theirs = getattr(module, name).grad.numpy()
        assert relative_error(theirs, value) < 1e-10, name


# the model texts whose plain reference is a forward pass only (their backward is checked by
# centred differences above); a new cell must bring a reference backward
FORWARD_ONLY_REFERENCES = {"lstm:peephole=true", "lstm:coupled=true", "lstm:forget_gate=false",
                           "lstm:peephole=true,coupled=true"}


@pytest.mark.parametrize("text", TEXTS)
def test_fast_kernel_matches_its_plain_reference(text):
    spec = spec_of(text)
    cell = spec.cell
    params = scaled_params(spec, seed=15)
    rng = np.random.default_rng(16)
    x = rng.standard_normal((B, 6, D))
    dh_out = rng.standard_normal((B, 6, H))
    h, cache = cell.forward(params, np.ascontiguousarray(x.transpose(1, 0, 2)), spec)
    grads = cell.backward(params, cache, np.ascontiguousarray(dh_out.transpose(1, 0, 2)))
    ref = cell.reference(params, x, dh_out, spec)
    np.testing.assert_allclose(h.transpose(1, 0, 2), ref["h"], rtol=1e-12, atol=1e-14)
    if "c" in ref:
        np.testing.assert_allclose(cache.cells[1:].transpose(1, 0, 2), ref["c"], rtol=1e-12, atol=1e-14)
    assert ("grads" not in ref) == (text in FORWARD_ONLY_REFERENCES)
    if "grads" in ref:
        for name, value in ref["grads"].items():
            np.testing.assert_allclose(grads.params[name], value, rtol=1e-11, atol=1e-13, err_msg=name)
        np.testing.assert_allclose(grads.dh.transpose(1, 0, 2), ref["dh"], rtol=1e-11, atol=1e-13)
    if "dc" in ref:
        np.testing.assert_allclose(grads.dc.transpose(1, 0, 2), ref["dc"], rtol=1e-11, atol=1e-13)


def profile_of(text: str, gap: int, seed: int, **settings) -> probes.GradientProfile:
    spec = models.parse_model(text, hidden=8, **settings)
    return probes.probe_at_init(spec, tasks.get_task("remember"), gap, 16, seed)


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("gap,seed,scale", [(12, 0, 1.0), (30, 3, 1.0), (20, 5, 2.0)])
def test_the_split_adds_up_to_the_total(text, gap, seed, scale):
    profile = profile_of(text, gap, seed, recurrent_scale=scale)
    if profile.decades_total is not None:  # two causes per step back, in decades
        ok = np.isfinite(profile.decades_total) & np.isfinite(profile.decades_activation) \
            & np.isfinite(profile.decades_recurrent)
        # where a norm is exactly 0 (relu's dead units) a share is -inf and the split is not defined
        assert ok.sum() > gap or not math.isfinite(profile.summary["decades"]["total"] +
                                                   profile.summary["decades"]["activation"])
        np.testing.assert_allclose(profile.decades_activation[ok] + profile.decades_recurrent[ok],
                                   profile.decades_total[ok], rtol=1e-9, atol=1e-9)
    else:  # the direct path and the rest: the mean norms of two vectors that add up to the total
        assert profile.belt is not None and profile.gates is not None
        total = (profile.dc if profile.dc is not None else profile.dh).mean
        assert np.all(total <= (profile.belt + profile.gates) * (1 + 1e-12))
        assert np.all(total >= np.abs(profile.belt - profile.gates) * (1 - 1e-12))
        # one answer step: the direct path is the carrier at the answer step times the product of the gate
        assert profile.forget_product[0] == 1.0 and np.all(np.diff(profile.forget_product) <= 1e-15)


def probe_peak(spec, task, gap: int, batch: int) -> int:
    probes.probe_at_init(spec, task, 3, 2, 0)  # imports and first-call caches outside the measure
    tracemalloc.start()
    try:
        probes.probe_at_init(spec, task, gap, batch, 0)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("hidden,batch,gap", [(48, 32, 60), (160, 8, 16)])
def test_memory_estimate_is_one_to_one_and_a_half_times_the_peak(text, hidden, batch, gap):
    task = tasks.get_task("remember")
    spec = models.parse_model(text, hidden=hidden)
    peak = probe_peak(spec, task, gap, batch)
    estimate = config.probe_bytes(spec.kind, hidden, batch, task.length(gap), task.input_size)
    assert 1.0 <= estimate / peak <= 1.5, f"{text}: estimate {estimate:.0f} B, peak {peak} B"


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("gap,seed,scale", [(12, 0, 1.0), (40, 1, 1.0), (20, 2, 3.0)])
def test_the_explanation_starts_with_the_label_and_names_the_larger_cause(text, gap, seed, scale):
    profile = profile_of(text, gap, seed, recurrent_scale=scale)
    said = explain.sentences(profile)
    s = profile.summary
    if s["verdict"] in ("overflow", "nan"):
        assert said[0].startswith(profile.label + ":")
        return
    assert said[0].startswith(profile.label + ": ")
    text_all = " ".join(said)
    if "decades" in s and any(math.isnan(v) for v in s["decades"].values()):
        assert "is not defined here" in said[0]
    elif "decades" in s:
        d = s["decades"]
        cause = explain.main_cause({"activation": d["activation"], "recurrent": d["recurrent"]}, d["total"])
        act = profile.model.get("activation", "tanh")
        name = cells.get(profile.model["kind"]).split_names[cause == "recurrent"].format(activation=act)
        assert f"The main cause is {name}" in text_all, text_all
    else:
        cell = cells.get(profile.model["kind"])
        # compared as printed (1.0e+00 against 1.0e+00 is a tie, which goes to the direct path, named first)
        belt, gates = significant(s["belt_rel"]), significant(s["gates_rel"])
        carrier = "the direct path carries it" if belt >= gates else f"{cell.belt_rest} carry it"
        assert carrier in text_all, text_all


@pytest.mark.parametrize("text", TEXTS)
def test_train_checkpoint_round_trip_and_gradients_from(text, tmp_path):
    result = runner.invoke(app, ["train", "--task", "remember", "--gap", "3", "--model", text, "--hidden", "4",
                                 "--steps", "2", "--eval-every", "2", "--eval-size", "8", "--batch", "4",
                                 "--out", str(tmp_path), "--format", "json", "--quiet"], env=ENV)
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["status"] == "completed" and record["model"].partition(":")[0] == text.partition(":")[0]
    loaded = checkpoint.load_checkpoint(tmp_path / record["name"])
    assert loaded.spec.describe() == models.parse_model(text, hidden=4).describe()
    task = tasks.get_task("remember")
    assert {k: v.shape for k, v in loaded.params.items()} == models.param_shapes(loaded.spec, task.input_size,
                                                                                 task.output_size)
    again = tmp_path / "again.npz"
    checkpoint.save_checkpoint(again, loaded.spec, loaded.params)
    with np.load(again) as saved, np.load(tmp_path / record["name"] / "checkpoint.npz") as first:
        assert all(np.array_equal(saved[k], first[k]) for k in first.files if k not in ("model", "config"))
    probed = runner.invoke(app, ["gradients", "--from", str(tmp_path / record["name"]), "--format", "json"], env=ENV)
    assert probed.exit_code == 0, probed.output
    assert json.loads(probed.stdout)["models"][0]["model"]["kind"] == text.partition(":")[0]


@pytest.mark.parametrize("kind", cells.NAMES)
def test_the_kind_in_gradients_and_a_sweep(kind, tmp_path):
    table = runner.invoke(app, ["gradients", "--gap", "6", "--batch", "4", "-m", kind, "-m", "lstm"], env=ENV)
    assert table.exit_code == 0, table.output
    assert f"\n{kind}: " in table.stdout
    scenario = tmp_path / "one-kind.yaml"
    scenario.write_text(f"description: {kind}\ntask: remember\ngap: 3\nseed: 0\nmodel: {kind}\n"
                        "train:\n  steps: 2\n  eval_every: 2\n  eval_size: 8\n  probe_size: 4\n  batch: 4\n"
                        "sweep:\n  seed: [0, 1]\n")
    result = runner.invoke(app, ["sweep", str(scenario), "--out", str(tmp_path / "runs"), "--jobs", "1",
                                 "--format", "jsonl", "--set", "model.hidden=4"], env=ENV)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    runs = [row for row in rows if row["type"] == "run"]
    assert len(runs) == 2 and all(row["status"] == "completed" for row in runs)
    for row in runs:
        record = json.loads((Path(row["run_dir"]) / "result.json").read_text())
        assert record["model"].partition(":")[0] == kind


@pytest.mark.parametrize("kind", cells.NAMES)
def test_a_model_too_large_for_the_memory_limit_is_refused_in_one_line(kind, monkeypatch):
    monkeypatch.setenv(config.MEMORY_ENV, "64M")
    for args in (["gradients", "-m", f"{kind}:hidden=1500"], ["train", "--model", f"{kind}:hidden=1500"]):
        result = runner.invoke(app, args, env=ENV)
        assert result.exit_code == 2, result.output
        assert result.output.count("\n") == 1 and "memory" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("kind", cells.NAMES)
def test_training_memory_estimate_is_one_to_one_and_a_half_times_the_peak(kind, tmp_path):
    from lstm_cli import runs
    from lstm_cli.train import TrainConfig

    small = TrainConfig(task="remember", gap=3, model=models.parse_model(kind, hidden=4), batch=4, steps=1,
                        eval_every=1, eval_size=4, probe_size=2)
    runs.run_training(small, tmp_path / "warm")  # imports and first-call caches outside the measure
    spec = models.parse_model(kind, hidden=64)
    cfg = TrainConfig(task="remember", gap=50, model=spec, batch=64, steps=2, eval_every=2, eval_size=256,
                      probe_size=32)
    tracemalloc.start()
    try:
        runs.run_training(cfg, tmp_path / "measured")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    task = tasks.get_task("remember")
    estimate = config.train_bytes(kind, 64, task.length(50), task.input_size, 64, 256, 32)
    assert 1.0 <= estimate / peak <= 1.5, f"{kind}: estimate {estimate:.0f} B, peak {peak} B"
