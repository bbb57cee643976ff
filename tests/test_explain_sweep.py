"""Every sentence of every cell kind, on every seed: checked against the JSON printed beside it.

The sweep: every registered cell kind (``cells.NAMES``, so a new kind is swept too), with its
variants (``Cell.examples``) and a few settings that reach each advice, x recurrent scales
{0.5, 1, 3} x 8 seeds, at small H and gap. For every paragraph of ``gradients``' explanation:

- every number it quotes is a JSON value as printed (the expected strings are made here from
  the ``--format json`` document, not by the helpers that made the sentence);
- the cause it names is the larger share as printed (a tie goes to the first named), and the
  carrier it names is the larger part of the direct path and the rest;
- gates are called open only when their mean prints as 0.9 or more;
- a share that prints as 0.0 has no direction and no sign;
- advice proposes a ``--model`` text that parses, differs from the model in exactly the settings
  it names, and keeps every other setting; run, it moves the named quantity the promised way
  (checked on two seeds);
- no two models of one output share a label.
"""

from __future__ import annotations

import json
import math
import re

import pytest

from lstm_cli import api, cells
from lstm_cli.cells.base import ARTICLE
from lstm_cli.models import parse_model
from lstm_cli.render.gradients import explanation, json_document

SCALES = (0.5, 1.0, 3.0)
SEEDS = (1, 2, 3, 4, 10, 11, 12, 13)
GAP, HIDDEN, BATCH = 10, 8, 8
ADVICE_RUN_SEEDS = SEEDS[:2]

# settings that reach each branch of the advice, besides the kinds' own variants
EXTRA = {"rnn": ("rnn:init=orthogonal", "rnn:init=uniform"), "lstm": ("lstm:forget_bias=0", "lstm:chrono=4"),
         "indrnn": ("indrnn:init=identity",)}


def model_texts() -> list[str]:
    texts = []
    for kind in cells.NAMES:
        texts += [kind, *cells.get(kind).examples, *EXTRA.get(kind, ())]
    return texts + [texts[0]]  # the same model twice: two labels all the same


def one_decimal(value: float) -> str:
    """|value| to one decimal, 0.0 for what rounds to zero (the way a share is quoted)."""
    if math.isinf(value):
        return "infinitely many"
    text = f"{abs(value):.1f}"
    return "0.0" if float(text) == 0 else text


def sci2(value: float) -> str:
    return "0" if value == 0 else f"{value:.1e}"


def run_output(scale: float, seed: int):
    profiles, settings = api.probe_models(gap=GAP, models=model_texts(), batch=BATCH, seed=seed,
                                          hidden=HIDDEN, recurrent_scale=scale)
    document = json.loads(json.dumps(json_document(profiles, settings)))
    return [(d, explanation(p)) for d, p in zip(document["models"], profiles)]


OUTPUTS = {(scale, seed): run_output(scale, seed) for scale in SCALES for seed in SEEDS}
CASES = [pytest.param(scale, seed, id=f"scale{scale:g}-seed{seed}") for scale in SCALES for seed in SEEDS]

NUMBER = re.compile(r"(?<![\w^])-?\d+(?:\.\d+)?(?:e[+-]\d+)?(?![\w])")
MODEL_TEXT = re.compile(r"--model (\S+?)\)")


def expected_numbers(d: dict) -> set[str]:
    """Every number a paragraph may quote, as printed from the JSON, and the fixed thresholds."""
    s, steps = d["summary"], d["steps"]
    allowed = {"0.9", "0.001", "1", "2", str(s["steps_back_max"]), sci2(s["relative_at_first_step"])}
    if "decades" in s:
        allowed |= {one_decimal(v) for v in s["decades"].values()}
        if s.get("activation_slope") is not None:
            allowed.add(f"{s['activation_slope']:.2f}")
    if d.get("spectral_radius") is not None:
        allowed.add(f"{d['spectral_radius']:.2f}")
    if "h_abs" in steps:
        allowed.add(f"{sum(steps['h_abs']) / len(steps['h_abs']):.2f}")
    if "cell" in d:
        allowed |= {f"{d['cell']['u_mean']:.2f}", f"{d['cell']['u_max']:.3g}"}
    if "belt_rel" in s:
        allowed |= {sci2(s["belt_rel"]), sci2(s["gates_rel"])}
        if s.get("belt_share") is not None:
            allowed.add(f"{s['belt_share']:.2g}")
        if s.get("belt_factor_mean") is not None:
            allowed.add(f"{s['belt_factor_mean']:.2f}")
        if "forget_product" in steps:
            allowed.add(sci2(steps["forget_product"][-1]))
    return allowed


def check_numbers(d: dict, text: str) -> None:
    body = MODEL_TEXT.sub("--model)", text.removeprefix(d["label"] + ":"))
    body = re.sub(r"\b[a-z_]+=[\w.+-]+", "", body)  # settings an advice names (checked by check_advice)
    body = body.replace(ARTICLE, "").replace("log10", "").replace("h_{t-1}", "").replace("u_j", "").replace("1 - h^2", "").replace("h = 0", "").replace("exactly 0 at", "")
    allowed = expected_numbers(d)
    for number in NUMBER.findall(body):
        assert number in allowed, f"{number} is no JSON value of {d['label']}: {text}\nallowed: {sorted(allowed)}"


SPLIT = re.compile(r"per sequence, (?P<total>infinitely many|\S+) decades (?P<way>lost|gained) on average over (?P<k>\d+) steps "
                   r"back: (?P<first>infinitely many|\S+) from (?P<cause>.+?) \(.*?\), (?P<second>.+?) \(")


def check_split(d: dict, text: str) -> None:
    s = d["summary"]
    dec = s["decades"]
    if any(math.isnan(dec[k]) for k in ("total", "activation", "recurrent")):
        assert "is not defined here" in text, text
        return
    cell = cells.get(d["model"]["kind"])
    act = d["model"].get("activation", "tanh")
    names = {"activation": f"{act}'", "recurrent": cell.split_names[1]}
    printed = {k: float(f"{dec[k]:.1f}") for k in ("activation", "recurrent", "total")}
    lost = printed["total"] <= 0
    # the larger share as printed: the most negative when lost, the most positive when gained; a tie: the first
    order = sorted(("activation", "recurrent"), key=lambda k: printed[k] if lost else -printed[k])
    cause = order[0] if printed[order[0]] != printed[order[1]] else "activation"
    other = "recurrent" if cause == "activation" else "activation"
    if printed["total"] == 0:  # no direction, no cause: each share said with its own direction
        for k in ("activation", "recurrent"):
            said = (f"{one_decimal(dec[k])} from {names[k]}" if printed[k] == 0 else
                    f"{names[k]} takes {one_decimal(dec[k])} off" if printed[k] < 0 else
                    f"{names[k]} adds {one_decimal(dec[k])}")
            assert said in text, (text, dec)
        assert "0.0 decades net" in text and "main cause" not in text and " lost" not in text, text
        return
    m = SPLIT.search(text)
    assert m, text
    if math.isinf(dec["total"]):
        assert "exactly 0 at the first input" in text, text
    assert m["way"] == ("lost" if lost else "gained"), text
    assert m["total"] == one_decimal(dec["total"]) and int(m["k"]) == s["steps_back_max"] - s.get("split_from", 0)
    assert m["cause"] == names[cause] and m["first"] == one_decimal(dec[cause]), (text, dec)
    assert f"The main cause is {names[cause]}" in text, text
    theirs = printed[other]
    if theirs == 0 or (theirs < 0) == lost:
        assert m["second"] == f"{one_decimal(dec[other])} from {names[other]}", text
    else:  # a share against the total's direction, never one that prints as 0.0
        assert m["second"] == f"{names[other]} {'gives' if lost else 'takes'} {one_decimal(dec[other])} " \
                              f"{'back' if lost else 'off'}", text
    assert not re.search(r"(gives|takes) 0\.0", text) and "-0.0" not in text, text
    if cause == "recurrent" and d.get("spectral_radius") is not None and cell.name == "rnn":
        rho = float(f"{d['spectral_radius']:.2f}")
        assert ("< 1 shrinks" in text) == (lost and rho < 1), text
        assert ("> 1 multiplies" in text) == (not lost and rho > 1), text


BELT = re.compile(r"gradient (?P<k>\d+) steps back \((?P<rel>\S+) of its size at the answer step\), the direct path "
                  r"along .+? brings (?P<belt>\S+?)(?: \((?P<share>\S+) of the total's norm\))?, and (?P<rest>.+?) "
                  r"(?P<gates>\S+): (?P<who>.+?) carr(?:y|ies) it\.")
GATES = re.compile(r"The (?P<gate>[a-z ]+)s are (?P<state>open|not open) \(mean (?P<f>\S+) = (?P<mean>\S+) "
                   r"(?P<op>>=|<) 0\.9\)")
PRODUCT = re.compile(r"The product of (?P<f>\S+) over the (?P<k>\d+) steps back averages (?P<p>\S+)\.")


def check_belt(d: dict, text: str) -> None:
    s, steps = d["summary"], d["steps"]
    m = BELT.search(text)
    assert m, text
    assert m["belt"] == sci2(s["belt_rel"]) and m["gates"] == sci2(s["gates_rel"]), text
    assert m["rel"] == sci2(s["relative_at_first_step"]) and int(m["k"]) == s["steps_back_max"], text
    direct_larger = float(sci2(s["belt_rel"])) >= float(sci2(s["gates_rel"]))
    assert (m["who"] == "the direct path") == direct_larger, (text, s["belt_rel"], s["gates_rel"])
    gates = GATES.search(text)
    if s.get("belt_gate") is None:  # no gate on the direct path: exactly 1 per step, never "open"
        assert gates is None and "open" not in text, text
        assert all(v == 1.0 for v in steps.get("forget_product", [1.0])), steps.get("forget_product")
        return
    assert gates, text
    mean = float(f"{s['belt_factor_mean']:.2f}")
    assert gates["mean"] == f"{s['belt_factor_mean']:.2f}", text
    assert (gates["state"] == "open") == (mean >= 0.9) and (gates["op"] == ">=") == (mean >= 0.9), text
    product = PRODUCT.search(text)
    assert product and product["p"] == sci2(steps["forget_product"][-1]), text
    assert int(product["k"]) == s["steps_back_max"], text


def check_verdict(d: dict, text: str) -> None:
    s = d["summary"]
    if s["verdict"] in ("overflow", "nan"):
        return
    shown = float(sci2(s["relative_at_first_step"]))
    assert ("does not reach the first input" in text) == (shown < 1e-3), text
    assert ("does not reach" not in text) == ("reaches the first input" in text), text


ADVICE = re.compile(r"With (?P<what>.+?) \(--model (?P<model>\S+?)\)")


def proposals(text: str) -> list[tuple[list[str], str]]:
    """(the settings an advice names, its --model text) for each advice of a paragraph."""
    out = []
    for m in ADVICE.finditer(text):
        named = re.findall(r"\b([a-z_]+)=[\w.+-]+", m["what"])
        out.append((named, m["model"]))
    return out


def check_advice(d: dict, text: str) -> None:
    """Advice parses, never proposes what the model has, changes exactly what it names."""
    found = proposals(text)
    assert len(found) == len(MODEL_TEXT.findall(text)), f"advice not in the checked form: {text}"
    own = parse_model(model_texts_by_label(d)).describe()
    for named, model in found:
        proposed = parse_model(model).describe()
        # the same model whatever options the command is given beside it
        assert parse_model(model, hidden=HIDDEN + 1, recurrent_scale=7.0).describe() == proposed, model
        assert proposed["kind"] == own["kind"], text
        differs = {key for key in set(own) | set(proposed) if own.get(key) != proposed.get(key)}
        assert differs, f"advice proposes the model it is given: {text}"
        assert differs == set(named), (text, differs, named)


def model_texts_by_label(d: dict) -> str:
    """The model of a JSON entry as a --model text (every setting it describes)."""
    m = d["model"]
    said = {True: "true", False: "false"}
    return m["kind"] + ":" + ",".join(f"{k}={said.get(v, v) if isinstance(v, bool) else v}"
                                      for k, v in m.items() if k != "kind")


@pytest.mark.parametrize("scale, seed", CASES)
def test_every_sentence_agrees_with_the_json(scale, seed):
    output = OUTPUTS[(scale, seed)]
    labels = [d["label"] for d, _ in output]
    assert len(set(labels)) == len(labels), labels
    kinds = {d["model"]["kind"] for d, _ in output}
    assert kinds == set(cells.NAMES)
    for d, text in output:
        assert text.startswith(d["label"] + ":"), text
        check_numbers(d, text)
        if d["summary"]["verdict"] not in ("overflow", "nan"):
            if "decades" in d["summary"]:
                check_split(d, text)
            if "belt_rel" in d["summary"]:
                check_belt(d, text)
        check_verdict(d, text)
        check_advice(d, text)


def advised_cases():
    for scale in SCALES:
        for seed in ADVICE_RUN_SEEDS:
            for d, text in OUTPUTS[(scale, seed)]:
                for _, model in proposals(text):
                    yield pytest.param(d, model, scale, seed, id=f"{d['label']}-scale{scale:g}-seed{seed}")


@pytest.mark.parametrize("before, model, scale, seed", list(advised_cases()))
def test_advice_run_moves_the_named_quantity_the_promised_way(before, model, scale, seed):
    """The advised --model, run with the options of the command that advised it (its keys win)."""
    (profile,), _ = api.probe_models(gap=GAP, models=[model], batch=BATCH, seed=seed, hidden=HIDDEN,
                                     recurrent_scale=scale)
    after = json.loads(json.dumps(profile.to_dict()))
    if "decades" in before["summary"]:  # "removes this share": the recurrent share prints as 0.0
        assert one_decimal(after["summary"]["decades"]["recurrent"]) == "0.0", (model, after["summary"])
        assert one_decimal(before["summary"]["decades"]["recurrent"]) != "0.0"
    else:  # "mean f rises and the direct path lengthens"
        assert after["summary"]["belt_factor_mean"] > before["summary"]["belt_factor_mean"], model
        assert after["steps"]["forget_product"][-1] > before["steps"]["forget_product"][-1], model


def test_the_sweep_reaches_every_advice():
    """The sweep is no sweep of the easy cases: each kind's advice appears somewhere in it."""
    advised = {d["model"]["kind"] for output in OUTPUTS.values() for d, text in output if proposals(text)}
    assert {"rnn", "indrnn", "lstm"} <= advised, advised


@pytest.mark.parametrize("total", [0.0, 0.04, -0.04, -1e-15])
def test_a_training_total_that_prints_as_zero_names_no_cause(total):
    from lstm_cli import explain

    text = explain.training_sentence("tanh", 100, None, {"activation": -2.2 + total, "recurrent": 2.2, "total": total},
                                     0.5, 0.4)
    assert "carries" not in text and "no net change" in text and "0.0 decades" in text and "-0.0" not in text, text


def test_labels_are_unique_whatever_the_labels_given():
    from lstm_cli.models import unique_labels

    for labels in (["a", "a", "a"], ["a", "a", "a (2)"], ["a (2)", "a", "a"], ["b", "a", "b", "a (2)", "a"]):
        out = unique_labels(labels)
        assert len(set(out)) == len(out) and [o.split(" (")[0] for o in out] == [l.split(" (")[0] for l in labels], out
        assert out[0] == labels[0]


def test_the_same_model_twice_on_the_command_line_gets_two_labels():
    from typer.testing import CliRunner

    from lstm_cli.cli import app

    result = CliRunner().invoke(app, ["gradients", "--gap", "5", "--hidden", "4", "--batch", "2", "--recurrent-scale",
                                      "3", "-m", "rnn", "-m", "rnn:init=orthogonal", "--format", "json"])
    assert result.exit_code == 0, result.output
    labels = [m["label"] for m in json.loads(result.stdout)["models"]]
    assert len(set(labels)) == 2 and labels[0] == "rnn:hidden=4,recurrent_scale=3", labels


def test_labels_of_settings_that_differ_below_six_digits_differ():
    a, b = parse_model("rnn:recurrent_scale=1.0000001"), parse_model("rnn:recurrent_scale=1.0000002")
    assert a.label() != b.label()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the kernel's overflow is the point (the CLI hides it)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_an_overflow_says_what_overflowed_and_advises_from_the_model(dtype):
    """relu at recurrent scale 3 over 100 steps: float32's forward pass overflows (the loss is nan);
    float64 holds it. Whichever happens, the words follow the JSON and advice the model's own scale."""
    (profile,), _ = api.probe_models(gap=100, models=[f"rnn:activation=relu,dtype={dtype}"], batch=4, seed=1,
                                     hidden=32, recurrent_scale=3.0)
    d = json.loads(json.dumps(profile.to_dict()))
    text = explanation(profile)
    if d["summary"]["verdict"] not in ("overflow", "nan"):
        assert dtype == "float64" and "forward pass failed" not in text
        return
    assert dtype == "float32"
    loss_finite = isinstance(d["loss"], float) and math.isfinite(d["loss"])
    assert ("forward pass failed" in text) == (not loss_finite), text
    assert ("mean |h| inf" in text) == any(v in ("inf", float("inf")) for v in d["steps"]["h_abs"]), text
    (named, model), = proposals(text)
    assert named == ["recurrent_scale"] and parse_model(model).recurrent_scale == 1
    assert parse_model(model).describe() == {**parse_model(model_texts_by_label(d)).describe(), "recurrent_scale": 1.0}


def test_a_scenarios_models_get_distinct_labels(tmp_path):
    """`run`'s gradients: two runs whose models differ only in what the label does not show (a forget
    bias beside chrono, which replaces it) are probed as two models, and named apart."""
    path = tmp_path / "twins.yaml"
    path.write_text("task: remember\ngap: 5\nseed: 0\nmodel: lstm\ngradients:\n  batch: 2\n"
                    "sweep:\n  model: ['lstm:chrono=10,hidden=4', 'lstm:chrono=10,forget_bias=1,hidden=4', "
                    "'rnn:hidden=4', 'rnn:init=uniform,hidden=4']\n",
                    encoding="utf-8")
    scenario = api.load_scenario(path)
    (profiles, _), = api.scenario_gradients(scenario.points())
    labels = [p.label for p in profiles]
    assert len(profiles) == 3 and len(set(labels)) == len(labels), labels
