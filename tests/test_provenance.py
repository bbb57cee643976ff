"""Provenance in config.yaml (lstm_cli/provenance.py): where, when and how a record was made,
and that none of it is a setting (a resumed sweep keeps a record made elsewhere or earlier)."""

from __future__ import annotations

import json
import platform
import socket
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
import yaml

from lstm_cli import provenance, rundir, runs, scenario, sweep, __version__
from lstm_cli.models import ModelSpec
from lstm_cli.train import TrainConfig

TINY = TrainConfig(task="remember", gap=3, model=ModelSpec(hidden=4), batch=8, steps=4, eval_every=2,
                   eval_size=8, probe_size=2, seed=0)


def _utc(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    assert moment.utcoffset() is not None and moment.utcoffset().total_seconds() == 0, text
    return moment


def test_config_yaml_holds_the_provenance(tmp_path, monkeypatch):
    for name in provenance.SLURM_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "7")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")
    monkeypatch.setenv("MKL_NUM_THREADS", "3")
    monkeypatch.setattr("sys.argv", ["lstm-demo", "train", "--gap", "3"])
    before = datetime.now(timezone.utc).replace(microsecond=0)
    record = runs.run_training(TINY, tmp_path, name="r")
    after = datetime.now(timezone.utc)
    config = yaml.safe_load((tmp_path / "r" / rundir.CONFIG).read_text())
    made = config["provenance"]
    assert before <= _utc(made["start_time"]) <= _utc(made["end_time"]) <= after
    assert made["hostname"] == socket.gethostname()
    assert made["argv"] == ["lstm-demo", "train", "--gap", "3"]
    assert (made["python"], made["numpy"], made["lstm_demo"]) == (platform.python_version(), np.__version__,
                                                                   __version__)
    assert made["blas"] == np.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"]
    assert made["blas_threads"] == 3 and made["blas_threads_from"] in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    assert made["slurm"] == {"SLURM_ARRAY_TASK_ID": "7"}  # only the variables that are set
    assert "provenance" not in record and "hostname" not in json.dumps(record)  # result.json: results only


def test_without_a_thread_variable_the_count_is_the_cores(monkeypatch):
    for name in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    import os

    assert provenance.blas()["blas_threads"] == os.cpu_count()
    assert provenance.blas()["blas_threads_from"] == "cores"


def test_provenance_is_not_a_setting_resume_keeps_a_record_from_another_host(tmp_path):
    text = "task: remember\ngap: 3\nmodel: {kind: lstm, hidden: 4}\n" \
           "train: {batch: 8, steps: 4, eval_every: 2, eval_size: 8, probe_size: 2}\nsweep:\n  seed: [0, 1]\n"
    path = tmp_path / "tiny.yaml"
    path.write_text(text)
    sc = scenario.load(str(path), [])
    first = sweep.run_sweep(sc, tmp_path / "runs", jobs=1, run=sweep.train_job)
    assert first.ran == 2
    for outcome in first.outcomes:  # as if made on another machine, a year earlier, by another command
        config_path = Path(outcome.result["run_dir"]) / rundir.CONFIG
        config = yaml.safe_load(config_path.read_text())
        config["provenance"].update(hostname="elsewhere.example.org", start_time="2025-01-01T00:00:00+00:00",
                                    end_time="2025-01-01T00:00:09+00:00", argv=["somebody", "else"], pid=1)
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    again = sweep.run_sweep(sc, tmp_path / "runs", jobs=1, resume=True, run=sweep.train_job)
    assert (again.ran, again.skipped) == (0, 2)
    assert [o.key for o in again.outcomes] == ["seed=0", "seed=1"]  # the run keys carry no provenance


def test_now_is_utc_iso_8601_to_the_second():
    text = provenance.now()
    assert _utc(text).microsecond == 0 and text.endswith("+00:00")


@pytest.mark.parametrize("value", ["", "abc"])
def test_a_thread_variable_that_is_not_a_count_is_passed_over(monkeypatch, value):
    for name in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
        monkeypatch.setenv(name, value)
    assert provenance.blas()["blas_threads_from"] == "cores"


def test_config_yaml_names_the_platform_that_decides_the_bits(tmp_path, monkeypatch):
    """The BLAS core type and numpy's SIMD features (another CPU family sums in another order)."""
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")  # read only at start-up: here just recorded
    monkeypatch.delenv("NPY_DISABLE_CPU_FEATURES", raising=False)
    runs.run_training(TINY, tmp_path, name="r")
    made = yaml.safe_load((tmp_path / "r" / rundir.CONFIG).read_text())["provenance"]
    simd = np.show_config(mode="dicts")["SIMD Extensions"]
    assert made["simd_baseline"] == list(simd["baseline"]) and made["simd_found"] == list(simd["found"])
    assert made["blas_core"] == provenance.blas_core() != ""
    assert made["cpu_overrides"] == {"OPENBLAS_CORETYPE": "Haswell"}


def test_the_blas_core_without_threadpoolctl_is_openblas_own_answer(monkeypatch):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    blas = [lib for lib in threadpoolctl.threadpool_info() if lib.get("user_api") == "blas"]
    with_it = provenance.blas_core()
    monkeypatch.setitem(__import__("sys").modules, "threadpoolctl", None)  # import fails: the fallback
    without = provenance.blas_core()
    assert without in (with_it, "unknown")
    wheel_openblas = [lib for lib in blas if "numpy.libs" in str(lib.get("filepath"))]  # a pip wheel's own
    if wheel_openblas and wheel_openblas[0].get("internal_api") == "openblas":
        assert with_it == without == wheel_openblas[0]["architecture"]


def test_version_verbose_prints_the_platform():
    from typer.testing import CliRunner

    from lstm_cli.cli import app

    plain = CliRunner().invoke(app, ["--version"])
    assert plain.exit_code == 0 and plain.output == f"lstm-demo {__version__}\n"
    for args in (["--version", "--verbose"], ["--verbose", "--version"]):
        done = CliRunner().invoke(app, args)
        assert done.exit_code == 0, done.output
        lines = done.output.splitlines()
        assert lines[0] == f"lstm-demo {__version__}"
        assert f"numpy {np.__version__}" in lines[1]
        assert lines[2].startswith("blas: ") and f"core {provenance.blas_core()}" in lines[2]
        found = " ".join(np.show_config(mode="dicts")["SIMD Extensions"]["found"])
        assert lines[3].endswith(f"found {found}")
        assert lines[4].startswith("cpu overrides: ")
