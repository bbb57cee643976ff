"""Hostile round 2 (issue 22): shared directories, foreign records, signals, the Dask address,
every file read with a bound, numbers and memory, paths, plots and streams.

Every class of the issue is swept over many hostile values, not its one example. A case asserts
the exit code, at most one line on stderr for an error (none of them a traceback), and, where
records are concerned, that nothing outside --out changed. Cases run through Typer's CliRunner
in this process unless they need a real one (a signal, a closed pipe, ulimit, another user).
"""

from __future__ import annotations

import ast
import errno
import hashlib
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lstm_cli import files, records, runs
from lstm_cli.cli import app
from lstm_cli.models import ModelSpec
from lstm_cli.train import TrainConfig

runner = CliRunner()
ROOT = Path(__file__).resolve().parent.parent
TRAIN = ["train", "--gap", "4", "--hidden", "4", "--steps", "6", "--eval-every", "3", "--eval-size", "8",
         "--batch", "8", "-q", "-f", "json"]
TINY = TrainConfig(task="remember", gap=4, model=ModelSpec(hidden=4), batch=8, steps=6, eval_every=3,
                   eval_size=8, probe_size=4)
SMALL = """\
description: a tiny grid for hostile tests
task: remember
gap: 4
model: {{hidden: 4}}
train: {{steps: {steps}, eval_every: 3, eval_size: 8, probe_size: 4, batch: 8}}
sweep:
  model: [rnn, lstm]
  seed: 0..{last_seed}
"""


# ---- helpers ----

def invoke(args, env: dict | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, [str(a) for a in args], env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a traceback: fail with it
    return result.exit_code, result.stdout, result.stderr


def cli_process(args, env: dict | None = None, timeout: float = 60, prefix=(), shell_prefix: str = "",
                **kwargs) -> tuple[int, str, str]:
    command = [*prefix, sys.executable, "-m", "lstm_cli", *map(str, args)]
    if shell_prefix:
        command = ["bash", "-c", shell_prefix + ' exec "$@"', "bash", *command]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, **kwargs)
    return proc.returncode, proc.stdout, proc.stderr


def one_line(code: int, stderr: str, expected) -> None:
    """``expected`` exit code(s), no traceback, exactly one non-empty line on stderr."""
    assert "Traceback" not in stderr, stderr
    assert code in (expected if isinstance(expected, tuple) else (expected,)), (code, stderr)
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].strip(), stderr


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def small(directory: Path, steps: int = 6, last_seed: int = 1, name: str = "small") -> Path:
    path = directory / f"{name}.yaml"
    path.write_text(SMALL.format(steps=steps, last_seed=last_seed))
    return path


@pytest.fixture(autouse=True)
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def other_user() -> list[str]:
    """A command prefix that runs as another user (nobody), without root's capabilities."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
            "--bounding-set=-dac_override,-dac_read_search,-fowner"]


def can_be_other_user() -> bool:
    if os.geteuid() != 0:
        return False
    if not shutil.which("setpriv"):
        return False
    return subprocess.run([*other_user(), "true"], capture_output=True).returncode == 0


needs_other_user = pytest.mark.skipif(not can_be_other_user(),
                                      reason="needs root and setpriv to run as another user (nobody)")


# ==== A. records escaping, replaced or left "running" ====

LINK_TARGETS = ["file", "dangling", "directory", "dev-null", "fifo", "link-chain"]


def plant(target_kind: str, where: Path, victim_dir: Path) -> tuple[Path, object]:
    """A symbolic link at ``where`` to something outside --out; (victim, its state before)."""
    victim = victim_dir / f"victim-{target_kind}"
    if target_kind == "file":
        victim.write_text("precious\n")
    elif target_kind == "directory":
        victim.mkdir()
    elif target_kind == "fifo":
        os.mkfifo(victim)
    elif target_kind == "dev-null":
        victim = Path("/dev/null")
    elif target_kind == "link-chain":
        final = victim_dir / "victim-final"
        final.write_text("precious\n")
        victim.symlink_to(final)
        victim = final
    os.symlink(victim, where)
    return victim, _state(victim)


def _state(path: Path):
    if not os.path.lexists(path):
        return None
    info = os.lstat(path)
    return (stat.S_IFMT(info.st_mode), digest(path) if stat.S_ISREG(info.st_mode) else None)


@pytest.mark.parametrize("kind", LINK_TARGETS)
def test_a_train_lock_file_link_is_never_followed(tmp_path, kind):
    out = tmp_path / "out"
    out.mkdir()
    victim, before = plant(kind, out / ".a.lock", tmp_path)
    code, _, err = invoke([*TRAIN, "--out", out, "--name", "a"])
    one_line(code, err, 2)
    assert "symbolic link" in err and ".a.lock" in err
    assert _state(victim) == before
    assert os.path.islink(out / ".a.lock")


@pytest.mark.parametrize("kind", ["file", "dangling", "directory"])
@pytest.mark.parametrize("lock", ["sweep", "run"])
def test_a_sweep_lock_file_link_is_never_followed(tmp_path, kind, lock):
    scenario = small(tmp_path, last_seed=0)
    out = tmp_path / "out"
    (out / "small").mkdir(parents=True)
    where = out / ".small.lock" if lock == "sweep" else out / "small" / ".model=rnn,seed=0.lock"
    victim, before = plant(kind, where, tmp_path)
    code, _, err = invoke(["run", scenario, "--out", out, "-f", "json"] if lock == "run"
                          else ["sweep", scenario, "--out", out, "--jobs", "1", "-f", "csv"])
    assert "Traceback" not in err
    assert code == 2, err
    assert "symbolic link" in err
    assert _state(victim) == before


@pytest.mark.parametrize("content,accepted", [
    (b"", True), (b"123\n", True), (b"4194303\n", True), (b"  77  \n", True),
    (b"not a pid\n", False), (b"precious data\n" * 20, False), (b"\x00" * 10, False),
])
def test_a_lock_file_is_never_truncated_into(tmp_path, content, accepted):
    lock = tmp_path / ".run.lock"
    lock.write_bytes(content)
    if accepted:
        with files.locked(tmp_path / "run"):
            held = lock.read_bytes()
            assert held.split()[0] == str(os.getpid()).encode()
        assert len(held) >= len(content.rstrip())  # written over, never cut shorter than before
    else:
        with pytest.raises(files.BadInput, match="not this tool's lock file"):
            with files.locked(tmp_path / "run"):
                pass
        assert lock.read_bytes() == content


@pytest.mark.parametrize("what", ["hard-link", "fifo", "directory"])
def test_a_lock_file_that_is_not_a_private_regular_file(tmp_path, what):
    lock = tmp_path / ".run.lock"
    victim = tmp_path / "victim"
    if what == "hard-link":
        victim.write_text("")  # empty: it would look like a fresh lock
        os.link(victim, lock)
    elif what == "fifo":
        os.mkfifo(lock)
    else:
        lock.mkdir()
    with pytest.raises(files.BadInput, match="cannot lock"):
        with files.locked(tmp_path / "run"):
            pass
    assert not files.is_locked(tmp_path / "run")
    if what == "hard-link":
        assert victim.read_bytes() == b""


@pytest.mark.parametrize("command", ["run", "run-index", "sweep", "sweep-dry"])
@pytest.mark.parametrize("target", ["directory", "dangling", "file"])
def test_a_scenario_directory_that_is_a_link_is_refused(tmp_path, command, target):
    scenario = small(tmp_path, last_seed=0)
    out = tmp_path / "out"
    out.mkdir()
    elsewhere = tmp_path / "elsewhere"
    if target == "directory":
        elsewhere.mkdir()
    elif target == "file":
        elsewhere.write_text("x")
    (out / "small").symlink_to(elsewhere)
    args = {"run": ["run", scenario, "-f", "json"], "run-index": ["run", scenario, "--index", "1", "-f", "json"],
            "sweep": ["sweep", scenario, "--jobs", "1", "-f", "csv"],
            "sweep-dry": ["sweep", scenario, "--dry-run", "-f", "csv"]}[command]
    code, _, err = invoke([*args, "--out", out])
    if command == "sweep-dry":  # a dry run writes nothing: it may list, but must not write
        assert "Traceback" not in err and code in (0, 2)
    else:
        one_line(code, err, 2)
    if target == "directory":
        assert list(elsewhere.iterdir()) == []
    elif target == "dangling":
        assert not os.path.lexists(elsewhere)


@pytest.mark.parametrize("out", ["", " ", "\t"])
@pytest.mark.parametrize("command", ["train", "run", "sweep", "sweep-dry"])
def test_a_empty_out_is_refused(tmp_path, monkeypatch, out, command):
    monkeypatch.chdir(tmp_path)
    scenario = small(tmp_path, last_seed=0)
    args = {"train": TRAIN, "run": ["run", scenario], "sweep": ["sweep", scenario, "--jobs", "1"],
            "sweep-dry": ["sweep", scenario, "--dry-run"]}[command]
    before = sorted(os.listdir(tmp_path))
    code, _, err = invoke([*args, "--out", out])
    one_line(code, err, 2)
    assert "--out" in err
    assert sorted(os.listdir(tmp_path)) == before


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory) -> Path:
    """A finished sweep of 2 models x 3 seeds (its scenario in the same directory), made once."""
    base = tmp_path_factory.mktemp("finished")
    scenario = small(base, last_seed=2)
    code, _, err = invoke(["sweep", scenario, "--out", base / "out", "--jobs", "2", "-f", "csv"])
    assert code == 0, err
    return base


@pytest.fixture
def sweep_copy(tmp_path, finished_sweep) -> Path:
    shutil.copytree(finished_sweep, tmp_path / "w")
    return tmp_path / "w"


def record_digests(sweep_dir: Path) -> dict:
    return {str(p.relative_to(sweep_dir)): digest(p) for p in sorted(sweep_dir.rglob("*"))
            if p.is_file() and p.name in ("result.json", "config.yaml", "checkpoint.npz")}


CHANGES = [["--set", "train.steps=7"], ["--set", "train.lr=0.5"], ["--set", "train.clip=2"],
           ["--set", "train.batch=4"], ["--set", "train.eval_size=16"], ["--set", "gap=5"],
           ["--set", "model.forget_bias=1"], ["--set", "task=adding"], ["edit-file"]]


@pytest.mark.parametrize("dry", [False, True], ids=["resume", "dry-run"])
@pytest.mark.parametrize("change", CHANGES, ids=" ".join)
def test_a_resume_never_replaces_a_finished_run_whose_settings_changed(sweep_copy, change, dry):
    scenario = sweep_copy / "small.yaml"
    sets = change
    if change == ["edit-file"]:
        scenario.write_text(scenario.read_text().replace("steps: 6", "steps: 8"))
        sets = []
    before = record_digests(sweep_copy / "out" / "small")
    args = ["sweep", scenario, "--out", sweep_copy / "out", *sets, "-f", "csv"]
    code, out, err = invoke([*args, "--dry-run"] if dry else [*args, "--resume", "--jobs", "1"])
    one_line(code, err, 2)
    assert "other settings" in err
    assert "to run" not in out
    assert record_digests(sweep_copy / "out" / "small") == before


@pytest.mark.parametrize("seeds", ["0..0", "0..1", "1..1", "2..2", "1..2"])
def test_a_resume_with_a_smaller_grid_never_cuts_the_summary(sweep_copy, seeds):
    sweep_dir = sweep_copy / "out" / "small"
    before = (sweep_dir / "summary.csv").read_text().splitlines()
    code, out, err = invoke(["sweep", sweep_copy / "small.yaml", "--out", sweep_copy / "out", "--resume",
                             "--set", f"seed={seeds}", "-f", "csv", "--jobs", "1"])
    assert code == 0, err
    after = (sweep_dir / "summary.csv").read_text().splitlines()
    assert after == before  # every run of the larger grid is still counted: 3 per model
    assert "earlier" in err
    listed = json.loads((sweep_dir / "sweep.json").read_text())["runs"]
    assert len({entry["key"] for entry in listed}) == 6


TAMPER = {
    "metric-list": ("metric", ["accuracy"]), "metric-dict": ("metric", {"a": 1}),
    "gradient-string": ("gradient", "oops"), "gradient-list": ("gradient", [1, 2]),
    "steps-huge": ("steps", 10 ** 400), "steps-string": ("steps", "many"),
    "wall-time-string": ("wall_time", "abc"), "success-string": ("success", "yes"),
    "accuracy-dict": ("accuracy", {"x": 1}),
}


@pytest.mark.parametrize("case", sorted(TAMPER))
def test_d_resume_aggregates_a_tampered_kept_record(sweep_copy, case):
    key, value = TAMPER[case]
    path = sweep_copy / "out" / "small" / "model=rnn,seed=1" / "result.json"
    record = json.loads(path.read_text())
    record[key] = value
    path.write_text(json.dumps(record))
    code, out, err = invoke(["sweep", sweep_copy / "small.yaml", "--out", sweep_copy / "out", "--resume",
                             "-f", "jsonl", "--jobs", "1"])
    assert "Traceback" not in err
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines() if '"summary"' in line]
    assert [row["runs"] for row in rows] == [3, 3]
    assert rows[0]["succeeded"] <= 3


@pytest.mark.parametrize("command", ["train", "run"])
@pytest.mark.parametrize("delay", [1.5, 3.0])
def test_a_sigterm_records_the_run_as_interrupted(tmp_path, command, delay):
    steps = 200_000
    scenario = small(tmp_path, steps=steps, last_seed=0)
    scenario.write_text(scenario.read_text().replace("model: [rnn, lstm]", "model: [lstm]")
                        .replace("batch: 8}", "batch: 8, lr: 1.0e-12}"))  # never learns: still running
    args = ([*TRAIN[:-2], "--steps", str(steps), "--lr", "1e-12", "--name", "t"] if command == "train"
            else ["run", scenario])
    proc = subprocess.Popen([sys.executable, "-m", "lstm_cli", *map(str, args), "--out", str(tmp_path / "out")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run_dir = tmp_path / "out" / ("t" if command == "train" else "small/model=lstm,seed=0")
    deadline = time.monotonic() + 30
    while not (run_dir / "result.json").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(delay - 1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert "Traceback" not in err
    assert proc.returncode == 143, err
    record = json.loads((run_dir / "result.json").read_text())
    assert record["status"] == "interrupted"
    assert runs.read_config(run_dir)["provenance"].get("end_time")
    assert len(err.splitlines()) == 1


# From 0.15 s: before that the interpreter may still be importing ``site`` (Python's own start-up,
# before any code of this package runs), where it reports "Fatal Python error" whatever we do.
@pytest.mark.parametrize("delay", [0.15, 0.2, 0.25, 0.3, 0.35, 0.45, 0.6, 0.8])
def test_a_sigint_during_start_up_is_quiet(tmp_path, delay):
    proc = subprocess.Popen([sys.executable, "-m", "lstm_cli", *TRAIN, "--out", str(tmp_path / "out")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    # 130 once Python handles SIGINT (-2: killed by it before the interpreter installed its handler;
    # 0: the run finished first)
    assert proc.returncode in (130, -signal.SIGINT, 0), (proc.returncode, err)
    assert len(err.splitlines()) <= 1


@pytest.mark.parametrize("reader", ["head -c1", "head -n1", "true"])
def test_a_sweep_into_a_closed_pipe_fails_and_records_say_what_ran(tmp_path, reader):
    scenario = small(tmp_path, steps=30, last_seed=2)
    out = tmp_path / "out"
    command = (f'"{sys.executable}" -m lstm_cli sweep "{scenario}" --format jsonl --jobs 1 --out "{out}" '
               f'| {reader}; exit ${{PIPESTATUS[0]}}')
    proc = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=120)
    assert "Traceback" not in proc.stderr
    assert proc.returncode in (1, 141), proc.stderr
    assert "stdout was closed" in proc.stderr.splitlines()[-1]
    statuses = [runs.read_result(d) for d in (out / "small").iterdir() if d.is_dir()]
    assert all(s is None or s["status"] in ("completed", "interrupted") for s in statuses)
    assert sum(1 for s in statuses if s and s["status"] == "completed") < 6
