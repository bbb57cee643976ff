"""The same command twice in a row (issue 23): a run given no name goes to a new directory
(``runs.unique_names``: <name>, <name>-run2, ...); a name given is used exactly and refused
when taken, before any work; ``--resume`` keeps and ``--overwrite`` replaces."""

from __future__ import annotations

import json
import os
import re

import pytest
from typer.testing import CliRunner

from lstm_cli import rundir, runs
from lstm_cli.cli import app
from lstm_cli.models import ModelSpec
from lstm_cli.train import TrainConfig

runner = CliRunner()
TINY_TRAIN = ["--gap", "3", "--hidden", "4", "--batch", "8", "--steps", "6", "--eval-every", "3",
              "--eval-size", "8", "--quiet"]
# a gradients probe and two training runs of a few steps: the probe's table comes first in `run`
TINY_SCENARIO = ("task: remember\ngap: 3\nseed: 0\nmodel: {kind: lstm, hidden: 4}\ngradients: {batch: 4}\n"
                 "train: {batch: 8, steps: 6, eval_every: 3, eval_size: 8}\n"
                 "sweep:\n  train.clip: [0, 1]\n")


def invoke(args, cwd):
    old = os.getcwd()
    os.chdir(cwd)
    try:
        result = runner.invoke(app, args)
    finally:
        os.chdir(old)
    return result.exit_code, result.stdout, result.stderr


def snapshot(path):
    """Every file of the records and its modification time (the lock files, which a writer touches, aside)."""
    return {str(p): p.stat().st_mtime_ns for p in sorted(path.rglob("*")) if not p.name.startswith(".")}


def test_unique_names_count_up_from_the_plain_name():
    names = runs.unique_names("remember-gap5-lstm-seed0")
    assert [next(names) for _ in range(3)] == ["remember-gap5-lstm-seed0", "remember-gap5-lstm-seed0-run2",
                                                "remember-gap5-lstm-seed0-run3"]


def test_a_run_given_no_name_takes_the_next_free_directory(tmp_path):
    config = TrainConfig(task="remember", gap=3, model=ModelSpec(hidden=4), batch=8, steps=6, eval_every=3,
                         eval_size=8, probe_size=2)
    first, second, third = (runs.run_training(config, tmp_path) for _ in range(3))
    base = runs.default_name(config.resolved())
    assert [r["name"] for r in (first, second, third)] == [base, f"{base}-run2", f"{base}-run3"]
    assert [rundir.read_config(tmp_path / r["name"])["name"] for r in (first, second, third)] == \
        [r["name"] for r in (first, second, third)]
    # a directory locked by another writer is not taken either
    with runs.locked(tmp_path / f"{base}-run4"):
        assert runs.run_training(config, tmp_path)["name"] == f"{base}-run5"


def test_train_twice_without_a_name_and_with_one(tmp_path):
    code, out1, err = invoke(["train", *TINY_TRAIN, "--format", "json"], tmp_path)
    assert code == 0, err
    code, out2, err = invoke(["train", *TINY_TRAIN, "--format", "json"], tmp_path)
    assert code == 0, err
    first, second = json.loads(out1), json.loads(out2)
    assert second["run_dir"] == first["run_dir"] + "-run2"
    assert {k: v for k, v in first.items() if k not in ("name", "run_dir", "wall_time")} == \
        {k: v for k, v in second.items() if k not in ("name", "run_dir", "wall_time")}
    # an explicit name is kept exactly, and refused when taken: one line, exit 2, nothing run
    assert invoke(["train", *TINY_TRAIN, "--name", "mine"], tmp_path)[0] == 0
    before = snapshot(tmp_path)
    code, stdout, stderr = invoke(["train", *TINY_TRAIN, "--name", "mine"], tmp_path)
    assert code == 2 and stdout == "" and len(stderr.splitlines()) == 1
    assert "runs/mine already holds a run record; pass --overwrite" in stderr and "--resume" in stderr
    assert snapshot(tmp_path) == before
    code, stdout, _ = invoke(["train", *TINY_TRAIN, "--name", "mine", "--resume", "--format", "json"], tmp_path)
    assert code == 0 and json.loads(stdout)["run_dir"] == "runs/mine" and snapshot(tmp_path / "runs" / "mine") == \
        {k: v for k, v in before.items() if "/runs/mine/" in k}
    code, _, stderr = invoke(["train", *TINY_TRAIN, "--name", "mine", "--resume", "--overwrite"], tmp_path)
    assert code == 2 and "give one of them" in stderr


def test_run_twice_goes_to_a_new_directory_and_a_taken_name_is_refused_before_the_probe(tmp_path):
    (tmp_path / "tiny.yaml").write_text(TINY_SCENARIO)
    code, first, err = invoke(["run", "tiny.yaml"], tmp_path)
    assert code == 0 and "run records in runs/tiny/" in err
    code, second, err = invoke(["run", "tiny.yaml"], tmp_path)
    assert code == 0 and "run records in runs/tiny-run2/" in err
    assert rundir.read_result(tmp_path / "runs" / "tiny-run2" / "clip=1")["status"] == "completed"
    untimed = re.compile(r"\d+\.\d s")
    assert untimed.sub("", first) == untimed.sub("", second)  # the same table, its times aside
    before = snapshot(tmp_path)
    code, stdout, stderr = invoke(["run", "tiny.yaml", "--name", "tiny"], tmp_path)
    assert code == 2 and stdout == "" and len(stderr.splitlines()) == 1  # no gradient table first
    assert "runs/tiny/clip=0 already holds a run record" in stderr
    assert snapshot(tmp_path) == before
    # --resume keeps both finished runs as they are; --overwrite replaces them
    code, _, err = invoke(["run", "tiny.yaml", "--resume", "--format", "json"], tmp_path)
    assert code == 0 and snapshot(tmp_path / "runs" / "tiny") == {k: v for k, v in before.items()
                                                                  if "/runs/tiny/" in k}
    code, _, err = invoke(["run", "tiny.yaml", "--overwrite", "--index", "1"], tmp_path)
    assert code == 0, err
    after = snapshot(tmp_path / "runs" / "tiny")
    assert [k for k in after if "clip=1" in k and after[k] != before[k]]
    assert all(after[k] == before[k] for k in after if "clip=0" in k)


def test_run_index_of_one_grid_shares_the_scenario_directory(tmp_path):
    """A job array runs `run SCENARIO --index I` apart: every index goes to runs/<scenario>/."""
    (tmp_path / "tiny.yaml").write_text(TINY_SCENARIO)
    for index in (0, 1):
        code, _, err = invoke(["run", "tiny.yaml", "--index", str(index)], tmp_path)
        assert code == 0 and "run records in runs/tiny/" in err
    code, _, err = invoke(["run", "tiny.yaml", "--index", "0"], tmp_path)
    assert code == 0 and "run records in runs/tiny-run2/" in err


@pytest.mark.parametrize("name", ["../out", "a/b", ""])
def test_a_bad_name_is_one_line(tmp_path, name):
    (tmp_path / "tiny.yaml").write_text(TINY_SCENARIO)
    code, stdout, stderr = invoke(["run", "tiny.yaml", "--name", name], tmp_path)
    assert code == 2 and stdout == "" and len(stderr.splitlines()) == 1 and "sweep name" in stderr
