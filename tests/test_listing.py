"""``lstm-demo runs``' rows filtered, sorted, shown and compared (lstm_cli/listing.py, render/records.py),
on real records of tiny runs whose gaps sort differently as text and as numbers."""

from __future__ import annotations

import csv
import io
import json
import random

import pytest
from typer.testing import CliRunner

from lstm_cli import listing, rundir, runs
from lstm_cli.cli import app
from lstm_cli.models import ModelSpec
from lstm_cli.records import FIELDS
from lstm_cli.train import TrainConfig

runner = CliRunner()
GAPS = [3, 10, 20, 100]


def tiny(gap: int, seed: int = 0) -> TrainConfig:
    return TrainConfig(task="remember", gap=gap, model=ModelSpec(hidden=4), batch=8, steps=6, eval_every=3,
                       eval_size=8, probe_size=2, seed=seed)


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    """runs/sweep/gap=N for N in GAPS, made in a shuffled order; gap=20's result says it succeeded."""
    out = tmp_path_factory.mktemp("runs")
    order = GAPS[:]
    random.Random(1).shuffle(order)
    for gap in order:
        runs.run_training(tiny(gap, seed=gap % 7), out / "sweep", name=f"gap={gap}")
    path = out / "sweep" / "gap=20" / runs.RESULT
    record = json.loads(path.read_text())
    record.update(success=True, accuracy=1.0)
    path.write_text(json.dumps(record))
    return out


def invoke(*args):
    result = runner.invoke(app, [*args])
    return result.exit_code, result.stdout, result.stderr


def rows(out, *args):
    code, stdout, stderr = invoke("runs", str(out), "--format", "json", *args)
    assert code == 0, stderr
    return json.loads(stdout)


def test_natural_key_orders_numbers_as_numbers():
    names = ["gap=100", "gap=20", "gap=3", "b/seed0-run10", "b/seed0-run2", "b/seed0", "b-run2/x", "b/x"]
    assert sorted(names, key=listing.natural_key) == [
        "b/seed0", "b/seed0-run2", "b/seed0-run10", "b/x", "b-run2/x", "gap=3", "gap=20", "gap=100"]


def test_the_listing_sorts_names_naturally_and_shows_success(out):
    listed = rows(out)
    assert [row["name"] for row in listed] == [f"sweep/gap={gap}" for gap in GAPS]
    for row in listed:  # the success of result.json, not the status
        assert row["success"] == rundir.read_result(out / row["name"])["success"]
        assert row["status"] == "completed"
    assert [row["success"] for row in listed] == [False, False, True, False]
    code, table, _ = invoke("runs", str(out))
    assert code == 0
    lines = {line.split()[0]: line.split() for line in table.splitlines() if line.strip().startswith("sweep/")}
    assert lines["sweep/gap=20"][1:3] == ["completed", "yes"] and lines["sweep/gap=3"][1:3] == ["completed", "no"]


@pytest.mark.parametrize("where, gaps", [
    (["gap=10"], [10]), (["gap=10.0"], [10]), (["success=yes"], [20]), (["success=no", "gap=100"], [100]),
    (["name=sweep/gap=1*"], [10, 100]), (["status=completed"], GAPS), (["task=adding"], []),
    (["seed=3"], [3, 10]),
])
def test_where_keeps_the_rows_every_filter_holds_for(out, where, gaps):
    args = [a for w in where for a in ("--where", w)]
    assert [row["gap"] for row in rows(out, *args)] == gaps


@pytest.mark.parametrize("args, words", [
    (["--where", "colour=red"], ["unknown key 'colour'", "keys: " + ", ".join(FIELDS)]),
    (["--where", "gap"], ["write KEY=VALUE"]),
    (["--sort", "size"], ["unknown key 'size'", "keys: name, status"]),
    (["--format", "yaml"], ["'yaml' is not one of 'table', 'json', 'jsonl', 'csv'"]),
])
def test_bad_keys_are_one_line_exit_2(out, args, words):
    code, stdout, stderr = invoke("runs", str(out), *args)
    assert code == 2 and stdout == "" and len(stderr.splitlines()) == 1
    assert all(word in stderr for word in words), stderr


def test_sort_by_a_field_numbers_as_numbers_missing_last(out):
    assert [row["gap"] for row in rows(out, "--sort", "gap")] == GAPS
    assert [row["gap"] for row in rows(out, "--sort", "-gap")] == GAPS[::-1]
    by_value = rows(out, "--sort", "-value")
    assert [row["value"] for row in by_value] == sorted((row["value"] for row in by_value), reverse=True)
    plain = [{"name": "a", "steps": None}, {"name": "b", "steps": 10}, {"name": "c", "steps": 9}]
    assert [row["name"] for row in listing.sort_rows(plain, "steps")] == ["c", "b", "a"]
    assert [row["name"] for row in listing.sort_rows(plain, "-steps")] == ["b", "c", "a"]


def test_jsonl_and_csv_hold_the_json_rows(out):
    listed = rows(out)
    code, jsonl, _ = invoke("runs", str(out), "--format", "jsonl")
    assert code == 0 and [json.loads(line) for line in jsonl.splitlines()] == listed
    code, text, _ = invoke("runs", str(out), "--format", "csv", "--where", "gap=20")
    table = list(csv.DictReader(io.StringIO(text)))
    assert list(table[0]) == FIELDS and [row["name"] for row in table] == ["sweep/gap=20"]


def test_show_is_the_files_of_the_record(out):
    run_dir = out / "sweep" / "gap=100"
    code, stdout, stderr = invoke("runs", "show", "sweep/gap=100", "--dir", str(out), "--format", "json")
    assert code == 0, stderr
    shown = json.loads(stdout)
    result, config = rundir.read_result(run_dir), rundir.read_config(run_dir)
    assert shown["run_dir"] == str(run_dir) and set(shown) == {"name", "run_dir", *listing.SECTIONS}
    assert shown["settings"]["gap"] == 100 and shown["settings"]["model.hidden"] == config["model"]["hidden"]
    assert shown["settings"]["seed"] == config["seed"] and "provenance.pid" not in shown["settings"]
    assert shown["outcome"]["value"] == result[result["metric"]] and shown["outcome"]["success"] is result["success"]
    assert shown["outcome"]["steps"] == result["steps"] and shown["outcome"]["clipping.clip"] == result["clipping"]["clip"]
    assert shown["provenance"]["start_time"] == config["provenance"]["start_time"]
    assert shown["gradient"]["verdict"] == result["gradient"]["verdict"]
    assert shown["gradient"]["dc_ratio_first_step_before"] == result["gradient"]["dc_ratio_first_step_before"]
    # a path works as well as a name; csv and jsonl hold one line per section and key
    code, text, _ = invoke("runs", "show", str(run_dir), "--format", "csv")
    lines = list(csv.DictReader(io.StringIO(text)))
    assert code == 0 and len(lines) == sum(len(shown[s]) for s in listing.SECTIONS)
    assert {(line["section"], line["key"]) for line in lines} == {(s, k) for s in listing.SECTIONS for k in shown[s]}
    code, table, _ = invoke("runs", "show", str(run_dir))
    assert code == 0 and table.startswith(f"run record {run_dir}\n")
    assert [line.strip() for line in table.splitlines() if line.strip() in listing.SECTIONS] == list(listing.SECTIONS)


def test_compare_shows_the_settings_that_differ_and_outcomes_side_by_side(out):
    names = ["sweep/gap=3", "sweep/gap=20"]
    code, stdout, stderr = invoke("runs", "compare", *names, "--dir", str(out), "--format", "json")
    assert code == 0, stderr
    compared = json.loads(stdout)
    assert [run["name"] for run in compared["runs"]] == names
    assert compared["settings"] == {"gap": [3, 20], "seed": [3, 6]}  # nothing else differs
    assert "model.hidden" in compared["same_settings"] and "gap" not in compared["same_settings"]
    results = [rundir.read_result(out / name) for name in names]
    assert compared["outcome"]["success"] == [False, True] == [r["success"] for r in results]
    assert compared["outcome"]["steps"] == [r["steps"] for r in results]
    code, text, _ = invoke("runs", "compare", *names, "--dir", str(out), "--format", "csv")
    lines = list(csv.DictReader(io.StringIO(text)))
    assert list(lines[0]) == ["section", "key", *names]
    assert {line["key"]: [line[n] for n in names] for line in lines if line["section"] == "settings"} == \
        {"gap": ["3", "20"], "seed": ["3", "6"]}
    code, table, _ = invoke("runs", "compare", *names, "--dir", str(out))
    assert code == 0 and "settings that differ" in table and "settings alike in every run:" in table


@pytest.mark.parametrize("args, words", [
    (["compare", "sweep/gap=3"], "two runs or more"),
    (["show"], "usage: lstm-demo runs show RUN"),
    (["show", "nowhere"], "nowhere: not a run record"),
    (["show", "sweep/gap=3", "--where", "gap=3"], "--where and --sort choose rows"),
])
def test_show_and_compare_refuse_bad_input_in_one_line(out, args, words):
    code, stdout, stderr = invoke("runs", *args, "--dir", str(out))
    assert code == 2 and stdout == "" and len(stderr.splitlines()) == 1 and words in stderr, stderr


def test_where_and_sort_take_a_setting_from_config_yaml(tmp_path):
    import dataclasses

    for clip in (1.0, 0.0, 0.5):
        runs.run_training(dataclasses.replace(tiny(3), clip=clip), tmp_path, name=f"clip{clip}")
    assert [row["name"] for row in rows(tmp_path, "--where", "clip=0")] == ["clip0.0"]
    assert [row["name"] for row in rows(tmp_path, "--where", "model.hidden=4", "--sort", "-clip")] == \
        ["clip1.0", "clip0.5", "clip0.0"]
    assert rows(tmp_path, "--where", "model.forget_bias=0") == []
    assert "clip" not in rows(tmp_path)[0]  # a setting filters and sorts; the rows stay the listing's
    code, _, stderr = invoke("runs", str(tmp_path), "--where", "model.size=4")
    assert code == 2 and "unknown key 'model.size'" in stderr and "or a setting: model.kind" in stderr
