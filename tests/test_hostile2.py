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

from lstm_cli import files, records, rundir, runs
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


@pytest.mark.parametrize("command,delay", [("train", 1.5), ("run", 2.0)])
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
    assert rundir.read_config(run_dir)["provenance"].get("end_time")
    assert len(err.splitlines()) == 1


# From 0.15 s: before that the interpreter may still be importing ``site`` (Python's own start-up,
# before any code of this package runs), where it reports "Fatal Python error" whatever we do.
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("delay", [0.15, 0.25, 0.35, 0.5, 0.8])
@pytest.mark.parametrize("command", ["train", "gradients"])
def test_a_a_signal_during_start_up_or_work_is_one_line(tmp_path, delay, signum, command):
    args = [*TRAIN, "--out", str(tmp_path / "out")] if command == "train" else ["gradients", "--gap", "300"]
    proc = subprocess.Popen([sys.executable, "-m", "lstm_cli", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(delay)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    # 130 / 143 once Python handles the signal (-2 / -15: it came before the interpreter or the
    # command line installed the handler; 0: the command finished first)
    code = 128 + signum
    assert proc.returncode in (code, -signum, 0), (proc.returncode, err)
    if proc.returncode == code:
        assert len(err.splitlines()) == 1 and ("interrupted" if signum == signal.SIGINT else "terminated") in err


@pytest.mark.parametrize("stack", ["--no-stack", "--stack"])
@pytest.mark.parametrize("reader", ["head -c1", "head -n1", "true"])
def test_a_sweep_into_a_closed_pipe_fails_and_records_say_what_ran(tmp_path, reader, stack):
    scenario = small(tmp_path, steps=30, last_seed=2)
    out = tmp_path / "out"
    command = (f'"{sys.executable}" -m lstm_cli sweep "{scenario}" --format jsonl --jobs 1 {stack} --out "{out}" '
               f'| {reader}; exit ${{PIPESTATUS[0]}}')
    proc = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=120)
    assert "Traceback" not in proc.stderr
    assert proc.returncode in (1, 141), proc.stderr
    assert "stdout was closed" in proc.stderr.splitlines()[-1]
    statuses = [rundir.read_result(d) for d in (out / "small").iterdir() if d.is_dir()]
    assert all(s is None or s["status"] in ("completed", "interrupted") for s in statuses)
    if stack == "--no-stack":  # one run a unit: the runs after the reader left never start
        assert sum(1 for s in statuses if s and s["status"] == "completed") < 6


# ==== B. every file read with a bound, in one place ====

def special_file(kind: str, tmp_path: Path) -> Path:
    """A path that is not a small regular file: made here, so the machine needs nothing."""
    path = tmp_path / f"special-{kind}"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev-zero":
        return Path("/dev/zero")
    elif kind == "dev-urandom":
        return Path("/dev/urandom")
    elif kind == "directory":
        path.mkdir()
    elif kind == "huge":
        with open(path, "wb") as f:  # sparse: 64 MB without the disk space
            f.truncate(64 << 20)
    elif kind == "link-out":
        (tmp_path / "secret").write_text("description: secret\n")
        sub = tmp_path / "sub"
        sub.mkdir()
        path = sub / "scenario.yaml"
        path.symlink_to(tmp_path / "secret")
    elif kind == "socket":
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))
        sock.close()
    return path


SPECIAL = ["fifo", "dev-zero", "dev-urandom", "directory", "huge", "link-out", "socket"]


@pytest.mark.parametrize("kind", SPECIAL)
@pytest.mark.parametrize("command", ["show", "run", "sweep-dry"])
def test_b_a_scenario_that_is_not_a_small_regular_file(tmp_path, kind, command):
    path = special_file(kind, tmp_path)
    args = {"show": ["scenarios", "show", path], "run": ["run", path, "--out", tmp_path / "out"],
            "sweep-dry": ["sweep", path, "--dry-run", "--out", tmp_path / "out"]}[command]
    start = time.monotonic()
    code, _, err = invoke(args)
    one_line(code, err, 2)
    assert time.monotonic() - start < 20  # refused at once, never read to the end of /dev/zero
    assert "secret" not in err or kind == "link-out"


@pytest.mark.parametrize("kind", SPECIAL)
def test_b_a_scheduler_file_that_is_not_a_small_regular_file(tmp_path, kind):
    pytest.importorskip("distributed")
    scenario = small(tmp_path, last_seed=0)
    code, _, err = invoke(["sweep", scenario, "--scheduler-file", special_file(kind, tmp_path),
                           "--out", tmp_path / "out"])
    one_line(code, err, 2)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("text", [
    "[" * 100_000 + "]" * 100_000, '{"a":' * 100_000 + "1" + "}" * 100_000, "not json", "[1, 2]",
    '{"address": 5}', '{"address": null}', '{}', "\xff\xfe", '{"address": "' + "x" * 300 + '"}',
])
def test_b_a_scheduler_file_that_is_not_a_dask_one(tmp_path, text):
    pytest.importorskip("distributed")
    path = tmp_path / "scheduler.json"
    path.write_bytes(text.encode("latin-1") if text.startswith("\xff") else text.encode())
    code, _, err = invoke(["sweep", small(tmp_path, last_seed=0), "--scheduler-file", path,
                           "--out", tmp_path / "out"])
    one_line(code, err, 2)


@pytest.mark.parametrize("member", ["result.json", "config.yaml"])
@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "directory", "huge", "socket", "link-out"])
def test_b_runs_goes_on_past_a_record_file_that_is_not_regular(tmp_path, member, kind):
    out = tmp_path / "out"
    runs.run_training(TINY, out, name="good")
    runs.run_training(TINY, out, name="bad")
    target = out / "bad" / member
    target.unlink()
    special = special_file(kind, tmp_path)
    if kind == "link-out":
        target.symlink_to(tmp_path / "secret")
    elif kind in ("fifo", "socket", "dev-zero"):
        target.symlink_to(special) if kind == "dev-zero" else os.rename(special, target)
    elif kind == "directory":
        target.mkdir()
    else:
        os.rename(special, target)
    start = time.monotonic()
    code, out_text, err = invoke(["runs", out, "-f", "json"])
    assert time.monotonic() - start < 20
    assert "Traceback" not in err and code == 0, err
    names = [row["name"] for row in json.loads(out_text)]
    assert "good" in names
    if member == "result.json":
        assert names == ["good"] and len(err.splitlines()) == 1 and "bad" in err


def test_b_every_user_file_is_read_through_the_bounded_reader():
    """No open(), read_text() or read_bytes() on a path outside files.read_regular: a reader that
    bypasses it is a hang (a FIFO) or an escape (a link) waiting to happen. The few exceptions
    are named here with their reason."""
    allowed = {
        ("checkpoint.py", "open"): "a zip member, after read_regular-like checks of the archive",
        ("process.py", "open"): "os.open(os.devnull) to discard a closed stdout",
    }
    found = []
    for path in sorted((ROOT / "lstm_cli").rglob("*.py")):
        if path.name == "files.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
                if name in ("open", "read_text", "read_bytes") and (path.name, name) not in allowed:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {name}(")
    assert found == []


# ==== C. the Dask address ====

BAD_ADDRESSES = [
    "tcp://", "tcp://:", "tcp://:8786", "tcp://127.0.0.1", "tcp://127.0.0.1:", "tcp://127.0.0.1:abc",
    "tcp://127.0.0.1:99999", "tcp://127.0.0.1:0", "tcp://127.0.0.1:-1", "tcp://127.0.0.1:8786x",
    "tcp://[::1", "tcp://[::1]", "tcp://[zz::1]:8786", "tcp://a b:1", "tcp://a/b:1", "tcp://\x1b[2J:1",
    "inproc://x", "ucx://127.0.0.1:8786", "tls://127.0.0.1:8786", "ws://127.0.0.1:8786", "http://x:1",
    "127.0.0.1:8786", "", "local:", "local:0", "local:-1", "local:²", "local:٣", "local:1.5", "local:99999",
    "local: 2", "tcp://127.0.0.1:\u0663", "tcp://" + "a" * 300 + ":1",
]


@pytest.mark.parametrize("address", BAD_ADDRESSES)
def test_c_a_malformed_or_impossible_address_is_bad_input_at_once(tmp_path, address):
    pytest.importorskip("distributed")
    start = time.monotonic()
    code, _, err = invoke(["sweep", small(tmp_path, last_seed=0), "--scheduler", address, "--out", tmp_path / "out"])
    one_line(code, err, 2)
    assert time.monotonic() - start < 10
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("address", ["tcp://", "tcp://[::1", "inproc://x", "tls://127.0.0.1:1",
                                     "tcp://127.0.0.1:99999", "tcp://a b:1", "local:²"])
def test_c_the_same_addresses_inside_a_scheduler_file(tmp_path, address):
    pytest.importorskip("distributed")
    path = tmp_path / "scheduler.json"
    path.write_text(json.dumps({"address": address}))
    code, _, err = invoke(["sweep", small(tmp_path, last_seed=0), "--scheduler-file", path, "--out", tmp_path / "out"])
    one_line(code, err, 2)


class SilentPort:
    """A loopback socket that accepts and then says nothing (or ``greeting``), as a web server or
    the dashboard port would to a Dask client."""

    def __init__(self, greeting: bytes = b""):
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(8)
        self.server.settimeout(30)
        self.greeting, self.conns = greeting, []
        self.address = f"tcp://127.0.0.1:{self.server.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        try:
            while True:
                conn, _ = self.server.accept()
                self.conns.append(conn)
                if self.greeting:
                    conn.sendall(self.greeting)
        except OSError:
            return

    def close(self):
        for conn in self.conns:
            conn.close()
        self.server.close()


@pytest.mark.parametrize("greeting", [b"", b"HTTP/1.1 400 Bad Request\r\n\r\n", b"\xff" * 8, b"\x00" * 8,
                                      b"SSH-2.0-OpenSSH\r\n"], ids=["silent", "http", "ones", "zeros", "ssh"])
def test_c_a_port_that_is_not_a_scheduler_fails_in_bounded_time(tmp_path, monkeypatch, greeting):
    pytest.importorskip("distributed")
    from lstm_cli import pool_dask

    monkeypatch.setattr(pool_dask, "HANDSHAKE_SECONDS", 1.0)  # the bound itself, shortened for the test
    port = SilentPort(greeting)
    try:
        start = time.monotonic()
        code, _, err = invoke(["sweep", small(tmp_path, last_seed=0), "--scheduler", port.address,
                               "--out", tmp_path / "out"])
        one_line(code, err, 1)
        assert "not a Dask scheduler" in err or "closed" in err
        assert time.monotonic() - start < 30
    finally:
        port.close()


def test_c_a_closed_port_fails_in_one_line(tmp_path):
    pytest.importorskip("distributed")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    address = f"tcp://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()  # nothing listens there now
    code, _, err = invoke(["sweep", small(tmp_path, last_seed=0), "--scheduler", address, "--out", tmp_path / "out"])
    one_line(code, err, 1)


@pytest.mark.parametrize("asked,runs_to_do,expected", [(6, 2, 2), (64, 1, 1), (3, 5, 3), (1, 4, 1), (2, 2, 2)])
def test_c_local_workers_are_capped_at_the_runs_to_do(monkeypatch, asked, runs_to_do, expected):
    distributed = pytest.importorskip("distributed")
    from lstm_cli import pool_dask

    started = {}

    class FakeCluster:
        def __init__(self, n_workers, **kwargs):
            started["n"] = n_workers

        def __enter__(self):
            return "tcp://127.0.0.1:1"

        def __exit__(self, *exc):
            return False

    class FakeClient(FakeCluster):
        def __init__(self, address, **kwargs):
            pass

    monkeypatch.setattr(distributed, "LocalCluster", FakeCluster)
    monkeypatch.setattr(distributed, "Client", FakeClient)
    with pool_dask.connect(f"local:{asked}", runs_to_do=runs_to_do):
        pass
    assert started["n"] == expected


# ==== D. `lstm-demo runs`, and resume, on foreign records ====

FOREIGN = {
    "provenance-string": ("config", "provenance", "a string"),
    "provenance-list": ("config", "provenance", [1, 2]),
    "provenance-int": ("config", "provenance", 7),
    "metric-list": ("result", "metric", ["accuracy"]),
    "metric-dict": ("result", "metric", {"a": 1}),
    "metric-int": ("result", "metric", 3),
    "wall-time-string": ("result", "wall_time", "abc"),
    "wall-time-list": ("result", "wall_time", [1]),
    "wall-time-huge": ("result", "wall_time", 10 ** 400),
    "steps-huge": ("result", "steps", 10 ** 400),
    "steps-string": ("result", "steps", "many"),
    "status-list": ("result", "status", ["running"]),
    "status-dict": ("result", "status", {"a": 1}),
    "model-list": ("result", "model", [1, 2]),
    "gap-dict": ("result", "gap", {"x": 1}),
    "task-none": ("result", "task", None),
    "pid-huge-running": ("pid", 2 ** 31, None),
    "pid-huger-running": ("pid", 2 ** 64, None),
    "pid-negative-running": ("pid", -5, None),
    "pid-string-running": ("pid", "12", None),
    "start-time-date": ("yaml", "start_time: 2026-11-28T01:02:03Z", None),
    "provenance-alias-list": ("yaml", "alias", None),
    "config-model-garbage": ("config", "model", {"kind": "lstm", "hidden": "x" * 5}),
}


def _plant_foreign(run_dir: Path, case: str) -> None:
    import yaml

    where, key, value = FOREIGN[case]
    result = json.loads((run_dir / "result.json").read_text())
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    if where == "result":
        result[key] = value
    elif where == "config":
        config[key] = value
    elif where == "pid":
        result["status"] = "running"
        config["provenance"]["pid"] = key
        config["provenance"]["hostname"] = socket.gethostname()
    elif where == "yaml":
        text = yaml.safe_dump(config, sort_keys=False)
        if key == "alias":
            text = "shared: &x [1, 2]\n" + text.replace("provenance:", "old_provenance:") + "provenance: *x\n"
        else:
            text = text.replace("provenance:", "old_provenance:") + "provenance:\n  " + key + "\n"
        (run_dir / "config.yaml").write_text(text)
        (run_dir / "result.json").write_text(json.dumps(result))
        return
    (run_dir / "result.json").write_text(json.dumps(result))
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


@pytest.fixture(scope="module")
def two_records(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("two") / "out"
    runs.run_training(TINY, out, name="good")
    runs.run_training(TINY, out, name="foreign")
    return out


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
@pytest.mark.parametrize("case", sorted(FOREIGN))
def test_d_runs_lists_records_of_any_shape(tmp_path, two_records, case, fmt):
    out = tmp_path / "out"
    shutil.copytree(two_records, out)
    _plant_foreign(out / "foreign", case)
    code, text, err = invoke(["runs", out, "-f", fmt], env={"COLUMNS": "200"})
    assert "Traceback" not in err
    assert code == 0, err
    assert "good" in text and "foreign" in text
    if fmt == "json":
        rows = {row["name"]: row for row in json.loads(text)}
        if case.startswith("pid-huge"):
            assert rows["foreign"]["status"] == "abandoned"  # no process can have that pid


@pytest.mark.parametrize("bad", ["loop", "self-loop", "dangling", "file-link"])
def test_d_runs_goes_on_past_a_bad_entry(tmp_path, two_records, bad):
    out = tmp_path / "out"
    shutil.copytree(two_records, out)
    if bad == "loop":
        os.symlink(out / "b-loop", out / "a-loop")
        os.symlink(out / "a-loop", out / "b-loop")
    elif bad == "self-loop":
        os.symlink(out / "self", out / "self")
    elif bad == "dangling":
        os.symlink(tmp_path / "nowhere", out / "dangling")
    else:
        (tmp_path / "afile").write_text("x")
        os.symlink(tmp_path / "afile", out / "file-link")
    code, text, err = invoke(["runs", out, "-f", "json"])
    assert "Traceback" not in err and code == 0, err
    assert sorted(row["name"] for row in json.loads(text)) == ["foreign", "good"]
    assert len(err.splitlines()) <= 2


@needs_other_user
@pytest.mark.parametrize("mode", [0o000, 0o100, 0o400, 0o600])
def test_d_runs_seen_by_another_user_goes_on_past_a_closed_directory(two_records, mode):
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="lstm-demo-shared-", dir="/tmp"))  # pytest's tmp is root's alone
    request_cleanup.append(base)
    base.chmod(0o755)
    out = base / "out"
    shutil.copytree(two_records, out)
    for path in [out, *out.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    (out / "foreign").chmod(mode)
    code, text, err = cli_process(["runs", out, "-f", "json"], prefix=other_user(), cwd="/")
    assert "Traceback" not in err and code == 0, err
    names = [row["name"] for row in json.loads(text)]
    assert "good" in names
    assert len(err.splitlines()) == (0 if "foreign" in names else 1), err


request_cleanup: list[Path] = []


@pytest.fixture(autouse=True, scope="module")
def _remove_shared_directories():
    yield
    for path in request_cleanup:
        shutil.rmtree(path, ignore_errors=True)


ESCAPES = ["\x1b[2J", "\x1b]0;pwned\x07", "\x1b[31mred", "\r\x1b[K", "\x9b2J", "a\x08b", "\u202eevil",
           "[bold]markup[red]"]


@pytest.mark.parametrize("where", ["task", "model", "directory"])
@pytest.mark.parametrize("escape", ESCAPES, ids=repr)
def test_d_terminal_escapes_are_escaped_in_tables_and_kept_in_json(tmp_path, two_records, escape, where):
    out = tmp_path / "out"
    shutil.copytree(two_records, out)
    name = "foreign"
    if where == "directory":
        name = "run" + escape
        os.rename(out / "foreign", out / name)
    else:
        path = out / "foreign" / "result.json"
        record = json.loads(path.read_text())
        record[where] = "x" + escape
        path.write_text(json.dumps(record))
    code, table, err = invoke(["runs", out], env={"COLUMNS": "250"})
    assert code == 0, err
    for control in ("\x1b", "\x07", "\x08", "\r", "\x9b", "\u202e"):
        assert control not in table and control not in err
    if escape.startswith("[bold]"):
        assert "[bold]markup[red]" in table  # shown as written, not as rich markup
    code, text, _ = invoke(["runs", out, "-f", "json"])
    rows = json.loads(text)
    if where == "directory":
        assert name in [row["name"] for row in rows]
    else:
        assert "x" + escape in [row[where] for row in rows]


def test_d_the_listing_uses_the_c_loader_and_falls_back_without_it(monkeypatch, two_records):
    import yaml

    assert files.yaml_loader() is getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with_c = records.list_records(two_records).rows
    monkeypatch.delattr(yaml, "CSafeLoader", raising=False)
    assert files.yaml_loader() is yaml.SafeLoader
    assert records.list_records(two_records).rows == with_c


def test_d_the_benchmark_runs_on_a_tiny_size(capsys):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import bench_runs
    finally:
        sys.path.pop(0)
    rows = bench_runs.main(["--records", "12", "--repeat", "1", "--formats", "json", "--loaders", "c,python"])
    assert [(row["loader"], row["records"]) for row in rows] == [("c", 12), ("python", 12)]
    assert all(row["median"] > 0 for row in rows)
    assert "median" in capsys.readouterr().out


# ==== E. numbers and memory ====

FORGET_BIASES = ["-710", "-745", "-1000", "-1e10", "-1.7e308", "710", "1e300"]


@pytest.mark.parametrize("bias", FORGET_BIASES)
@pytest.mark.parametrize("entry", ["option", "model-text", "set", "scenario"])
def test_e_a_forget_bias_beyond_exp_is_described_not_an_overflow(tmp_path, bias, entry):
    if entry == "option":
        args = ["gradients", "--gap", "3", "--batch", "2", "-m", "lstm", f"--forget-bias={bias}"]
    elif entry == "model-text":
        args = ["gradients", "--gap", "3", "--batch", "2", "-m", f"lstm:forget_bias={bias}"]
    else:
        scenario = tmp_path / "fb.yaml"
        scenario.write_text("task: remember\ngap: 3\nmodel: {kind: lstm, hidden: 4"
                            + (f", forget_bias: {bias}" if entry == "scenario" else "") + "}\n"
                            "gradients: {batch: 2}\n")
        args = ["run", scenario, *(["--set", f"model.forget_bias={bias}"] if entry == "set" else [])]
    code, out, err = invoke(args)
    assert "Traceback" not in err and code == 0, err
    sigmoid = 1.0 if float(bias) > 0 else 0.0
    assert f"(sigmoid = {sigmoid:.2f})" in " ".join(out.split())


@pytest.mark.parametrize("bias", ["-710", "-1000"])
def test_e_a_checkpoint_with_a_huge_forget_bias(tmp_path, bias):
    config = TrainConfig(task="remember", gap=3, model=ModelSpec(hidden=4, forget_bias=float(bias)), batch=4,
                         steps=2, eval_every=1, eval_size=4, probe_size=2)
    runs.run_training(config, tmp_path / "out", name="fb")
    code, out, err = invoke(["gradients", "--from", tmp_path / "out" / "fb"])
    assert "Traceback" not in err and code == 0, err
    assert "sigmoid = 0.00" in " ".join(out.split())


HUGE = "9" * 5000
HUGE_SETS = [f"gap={HUGE}", f"seed=0..{HUGE}", f"seed={HUGE}..{HUGE}", f"seed=0..2:{HUGE}", f"train.steps={HUGE}",
             f"model.hidden={HUGE}", f"seed=[{HUGE}]", f"train.lr={HUGE}", f"train.lr=1e{HUGE}", f"gap=1,{HUGE}",
             f"gap=-{HUGE}", f"model=lstm:hidden={HUGE}", f"train.batch=0x{HUGE}", f"seed={'1' * 4301}"]


@pytest.mark.parametrize("text", HUGE_SETS, ids=lambda t: t[:24])
@pytest.mark.parametrize("command", ["run", "sweep-dry"])
def test_e_a_huge_integer_in_set_is_one_short_line(tmp_path, text, command):
    scenario = small(tmp_path, last_seed=0)
    args = ["run", scenario] if command == "run" else ["sweep", scenario, "--dry-run"]
    code, _, err = invoke([*args, "--set", text, "--out", tmp_path / "out"])
    one_line(code, err, 2)
    assert len(err) < 1000


@pytest.mark.parametrize("option", ["--gap", "--seed", "--batch", "--hidden"])
def test_e_a_huge_integer_option_is_one_line(option):
    code, _, err = invoke(["gradients", option, HUGE])
    one_line(code, err, 2)
    assert len(err) < 1000


DUPLICATES = ["hidden=8,hidden=16", "hidden=8,hidden=8", "forget_bias=1,forget_bias=2", "init=uniform,init=orthogonal",
              "dtype=float32,hidden=4,dtype=float64", "recurrent_scale=1,recurrent_scale=2", " hidden=8 , hidden = 9"]


@pytest.mark.parametrize("settings", DUPLICATES)
@pytest.mark.parametrize("command", ["gradients", "train", "set"])
def test_e_a_duplicate_key_in_a_model_text_is_refused(tmp_path, settings, command):
    text = f"lstm:{settings}"
    if command == "gradients":
        args = ["gradients", "-m", text]
    elif command == "train":
        args = [*TRAIN, "-m", text, "--out", tmp_path / "out"]
    else:
        args = ["run", small(tmp_path, last_seed=0), "--set", f"model={text}", "--out", tmp_path / "out"]
    code, _, err = invoke(args)
    one_line(code, err, 2)
    assert "twice" in err
    assert not (tmp_path / "out").exists()


WARNING_CASES = [["-m", "rnn:recurrent_scale=1e308"], ["-m", "rnn:recurrent_scale=1e200,activation=relu"],
                 ["-m", "lstm:recurrent_scale=1e308"], ["-m", "rnn:recurrent_scale=1e38", "--dtype", "float32"]]


@pytest.mark.parametrize("warnings_env", ["", "error"], ids=["default", "PYTHONWARNINGS=error"])
@pytest.mark.parametrize("args", WARNING_CASES, ids=" ".join)
def test_e_numpy_warnings_never_reach_stderr(warnings_env, args):
    code, out, err = cli_process(["gradients", "--gap", "4", "--batch", "2", *args, "-f", "json"],
                                 env={"PYTHONWARNINGS": warnings_env} if warnings_env else {})
    assert code == 0, err
    assert err == ""
    json.loads(out)


@pytest.mark.parametrize("warnings_env", ["", "error"], ids=["default", "PYTHONWARNINGS=error"])
def test_e_a_checkpoint_with_inf_weights_gives_numbers_not_warnings(tmp_path, warnings_env):
    import numpy as np

    runs.run_training(TINY, tmp_path / "out", name="inf")
    path = tmp_path / "out" / "inf" / "checkpoint.npz"
    with np.load(path) as data:
        arrays = {name: data[name] for name in data.files}
    arrays["weight_hh_l0"] = np.full_like(arrays["weight_hh_l0"], 1e308)
    arrays["weight_hh_l0"][0, 0] = np.inf
    np.savez(path, **arrays)
    code, out, err = cli_process(["gradients", "--from", tmp_path / "out" / "inf", "-f", "json"],
                                 env={"PYTHONWARNINGS": warnings_env} if warnings_env else {})
    assert "Traceback" not in err and "Warning" not in err, err
    assert code in (0, 2), err
    if code == 0:
        json.loads(out)


def fake_kernel(tmp_path: Path, monkeypatch, cgroup: str, files_: dict[str, str], meminfo_kb: int = 8 << 20):
    from lstm_cli import config

    proc, root = tmp_path / "proc", tmp_path / "cgroup"
    (proc / "self").mkdir(parents=True)
    (proc / "meminfo").write_text(f"MemTotal: 99999999 kB\nMemAvailable: {meminfo_kb} kB\n")
    (proc / "self" / "cgroup").write_text(cgroup)
    (proc / "self" / "status").write_text("VmSize: 1000 kB\n")
    for name, text in files_.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    monkeypatch.setattr(config, "PROC", proc)
    monkeypatch.setattr(config, "CGROUP_ROOT", root)
    monkeypatch.delenv(config.MEMORY_ENV, raising=False)
    return config


GiB = 1 << 30
CGROUPS = {
    "v2-limit": ("0::/job\n", {"job/memory.max": f"{2 * GiB}\n", "job/memory.current": f"{GiB // 2}\n"},
                 int(1.5 * GiB), "cgroup"),
    "v2-max": ("0::/job\n", {"job/memory.max": "max\n", "job/memory.current": "10\n"}, 8 * GiB, "available"),
    "v2-parent-smaller": ("0::/a/b\n", {"a/b/memory.max": f"{4 * GiB}\n", "a/memory.max": f"{GiB}\n",
                                        "a/memory.current": "0\n"}, GiB, "cgroup"),
    "v2-root-only": ("0::/\n", {"memory.max": f"{3 * GiB}\n"}, 3 * GiB, "cgroup"),
    "v2-used-up": ("0::/job\n", {"job/memory.max": f"{GiB}\n", "job/memory.current": f"{2 * GiB}\n"}, 0, "cgroup"),
    "v1-limit": ("4:memory:/slurm/job\n", {"memory/slurm/job/memory.limit_in_bytes": f"{GiB}\n",
                                           "memory/slurm/job/memory.usage_in_bytes": f"{GiB // 4}\n"},
                 3 * GiB // 4, "cgroup"),
    "v1-unlimited": ("4:memory:/\n", {"memory/memory.limit_in_bytes": "9223372036854771712\n"}, 8 * GiB, "available"),
    "v1-several-controllers": ("3:cpu,memory:/x\n", {"memory/x/memory.limit_in_bytes": f"{GiB}\n"}, GiB, "cgroup"),
    "garbage": ("0::/job\n", {"job/memory.max": "lots\n"}, 8 * GiB, "available"),
    "none": ("", {}, 8 * GiB, "available"),
    "v1-and-v2": ("4:memory:/j\n0::/k\n", {"memory/j/memory.limit_in_bytes": f"{2 * GiB}\n",
                                            "k/memory.max": f"{GiB}\n"}, GiB, "cgroup"),
}


@pytest.mark.parametrize("case", sorted(CGROUPS))
def test_e_the_memory_limit_is_the_smallest_known(tmp_path, monkeypatch, case):
    import resource

    cgroup, files_, expected, source = CGROUPS[case]
    config = fake_kernel(tmp_path, monkeypatch, cgroup, files_)
    monkeypatch.setattr(resource, "getrlimit", lambda which: (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    limit, where = config.memory_limit()
    assert limit == expected
    assert source in where


@pytest.mark.parametrize("soft,expected", [(2 * GiB, 2 * GiB - 1000 * 1024), (GiB // 2, GiB // 2 - 1000 * 1024),
                                           (100 * GiB, 8 * GiB)])
def test_e_ulimit_v_counts_what_is_mapped_already(tmp_path, monkeypatch, soft, expected):
    import resource

    config = fake_kernel(tmp_path, monkeypatch, "", {})
    monkeypatch.setattr(resource, "getrlimit", lambda which: (soft, resource.RLIM_INFINITY))
    assert config.memory_limit()[0] == expected


@pytest.mark.parametrize("args", [
    ["gradients", "--batch", "1000000"], ["gradients", "--gap", "3000", "--batch", "512"],
    ["train", "--batch", "1000000", "--steps", "1", "-q"], ["gradients", "--hidden", "3000", "--batch", "256"],
], ids=" ".join)
def test_e_a_request_beyond_ulimit_v_is_refused_up_front(tmp_path, args):
    code, _, err = cli_process([*args, *(["--out", tmp_path / "out"] if args[0] == "train" else [])],
                               shell_prefix="ulimit -v 1500000;", env={"LSTM_DEMO_MEMORY_LIMIT": ""})
    one_line(code, err, 2)
    assert "ulimit -v" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["gradients", "train", "run"])
def test_e_a_memory_error_that_still_happens_is_one_line_and_recorded(tmp_path, monkeypatch, command):
    from lstm_cli import probes, train

    def out_of_memory(*args, **kwargs):
        raise MemoryError("Unable to allocate 3.01 EiB")

    monkeypatch.setattr(probes, "probe_at_init", out_of_memory)
    monkeypatch.setattr(train, "train", out_of_memory)
    args = {"gradients": ["gradients", "--gap", "3"], "train": [*TRAIN, "--name", "m"],
            "run": ["run", small(tmp_path, last_seed=0), "--index", "0"]}[command]
    code, _, err = invoke([*args, *(["--out", tmp_path / "out"] if command != "gradients" else [])])
    one_line(code, err, 1)
    assert "memory" in err.lower()
    if command != "gradients":
        run_dir = tmp_path / "out" / ("m" if command == "train" else "small/model=rnn,seed=0")
        record = rundir.read_result(run_dir)
        assert record["status"] == "failed" and "MemoryError" in record["error"]


@pytest.mark.parametrize("args", [["gradients", "--recurrent-scale", "0"], ["gradients", "-m", "rnn:recurrent_scale=0"],
                                  ["gradients", "-m", "rnn:recurrent_scale=-1"], ["train", "--recurrent-scale", "0"]],
                         ids=" ".join)
def test_e_recurrent_scale_zero_is_refused_as_the_docs_say(args):
    code, _, err = invoke(args)
    one_line(code, err, 2)
    assert "> 0" in err
    docs = (ROOT / "docs" / "scenarios.md").read_text() + (ROOT / "README.md").read_text()
    assert "`recurrent_scale` (> 0)" in docs and "recurrent_scale` (>= 0)" not in docs


# ==== F. paths, plots, streams ====

LONG_NAMES = ["a" * 256, "b" * 300 + ".yaml", "é" * 128, "c" * 1000, "d" * 255 + "/x.yaml", "dir/" + "e" * 256]


@pytest.mark.parametrize("name", LONG_NAMES, ids=lambda n: f"{len(n.encode())}-bytes")
@pytest.mark.parametrize("command", ["show", "run", "sweep", "sweep-dry", "list-runs"])
def test_f_a_name_over_255_bytes_is_bad_input(tmp_path, monkeypatch, name, command):
    monkeypatch.chdir(tmp_path)
    args = {"show": ["scenarios", "show", name], "run": ["run", name], "sweep": ["sweep", name],
            "sweep-dry": ["sweep", name, "--dry-run"], "list-runs": ["sweep", name, "--list-runs"]}[command]
    code, _, err = invoke(args)
    one_line(code, err, 2)
    assert len(err) < 600


@pytest.mark.parametrize("out", ["o" * 256, "x/" + "y" * 300])
def test_f_an_out_with_a_component_over_255_bytes_is_bad_input(tmp_path, monkeypatch, out):
    monkeypatch.chdir(tmp_path)
    code, _, err = invoke([*TRAIN, "--out", out])
    one_line(code, err, 2)


@pytest.mark.parametrize("suffix,errno_", [(".svg", errno.ENOSPC), (".png", errno.EDQUOT), (".pdf", errno.EFBIG),
                                           (".svg", errno.EIO)])
def test_f_a_figure_that_cannot_be_written_leaves_no_partial_file(tmp_path, monkeypatch, suffix, errno_):
    pytest.importorskip("matplotlib")
    target = tmp_path / f"figure{suffix}"
    target.write_bytes(b"the previous figure")
    real_write = os.write

    def failing_write(fd, data):
        if os.fstat(fd).st_size > 100:  # part of the figure is on disk, then the disk is full
            raise OSError(errno_, os.strerror(errno_))
        return real_write(fd, bytes(data)[:64])

    monkeypatch.setattr(os, "write", failing_write)
    code, _, err = invoke(["gradients", "--gap", "3", "--batch", "2", "--plot", target])
    monkeypatch.undo()
    one_line(code, err, 1)
    assert target.read_bytes() == b"the previous figure"  # the old one whole, never a cut new one
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]


@pytest.mark.parametrize("command,suffix", [("gradients", ".svg"), ("train", ".png")])
def test_f_ulimit_f_while_saving_a_figure_is_exit_1_and_no_file(tmp_path, suffix, command):
    pytest.importorskip("matplotlib")
    target = tmp_path / f"figure{suffix}"
    args = (["gradients", "--gap", "3", "--batch", "2"] if command == "gradients"
            else [*TRAIN, "--out", tmp_path / "out"])
    # 16 blocks: the record's files fit, the figure (tens of kB) does not
    code, _, err = cli_process([*args, "--plot", target], shell_prefix="ulimit -f 16;")
    one_line(code, err, 1)
    assert "--plot" in err
    assert not target.exists() and not list(tmp_path.glob(".figure*"))


BROKEN_MATPLOTLIB = {
    "raises": "raise RuntimeError('broken install')\n",
    "syntax": "def (:\n",
    "no-pyplot": "",  # a package without pyplot
    "pyplot-raises": None,
}


@pytest.mark.parametrize("case", sorted(BROKEN_MATPLOTLIB))
def test_f_a_broken_matplotlib_is_one_line(tmp_path, case):
    fake = tmp_path / "fake" / "matplotlib"
    fake.mkdir(parents=True)
    if case == "pyplot-raises":
        (fake / "__init__.py").write_text("def use(name):\n    pass\n")
        (fake / "pyplot.py").write_text("raise ImportError('cannot import name _c_internal_utils')\n")
    else:
        (fake / "__init__.py").write_text(BROKEN_MATPLOTLIB[case] or "def use(name):\n    pass\n")
    code, _, err = cli_process(["gradients", "--gap", "3", "--plot", tmp_path / "g.svg"],
                               env={"PYTHONPATH": str(tmp_path / "fake")})
    one_line(code, err, 2)
    assert "matplotlib" in err and not (tmp_path / "g.svg").exists()


@pytest.mark.parametrize("backend", ["nonsense", "module://nowhere"])
def test_f_any_mplbackend_writes_the_figure(tmp_path, backend):
    pytest.importorskip("matplotlib")
    code, _, err = cli_process(["gradients", "--gap", "3", "--batch", "2", "--plot", tmp_path / "g.svg"],
                               env={"MPLBACKEND": backend, "DISPLAY": ""})
    assert "Traceback" not in err and code == 0, err
    assert err.splitlines() == [f"lstm-demo: plot written to {tmp_path / 'g.svg'}"]
    assert (tmp_path / "g.svg").read_bytes().startswith(b"<?xml")


@needs_other_user
@pytest.mark.parametrize("home", ["/nonexistent"])
def test_f_an_unwritable_home_adds_nothing_to_stderr(home):
    pytest.importorskip("matplotlib")
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="lstm-demo-plot-", dir="/tmp"))
    request_cleanup.append(base)
    base.chmod(0o777)
    env = {"HOME": home, "MPLCONFIGDIR": "", "XDG_CONFIG_HOME": "", "XDG_CACHE_HOME": ""}
    code, _, err = cli_process(["gradients", "--gap", "3", "--batch", "2", "--plot", base / "g.png"],
                               prefix=other_user(), env=env, cwd="/")
    assert "Traceback" not in err and code == 0, err
    assert err.splitlines() == [f"lstm-demo: plot written to {base / 'g.png'}"]


@pytest.mark.parametrize("columns", ["0", "00", "000"])
@pytest.mark.parametrize("command", ["gradients", "train", "run", "runs"])
def test_f_columns_zero_gives_a_sane_width(tmp_path, columns, command):
    scenario = small(tmp_path, last_seed=0)
    if command == "runs":
        runs.run_training(TINY, tmp_path / "out", name="r")
    args = {"gradients": ["gradients", "--gap", "3", "--batch", "2"],
            "train": [*TRAIN[:-2], "--out", tmp_path / "out"],
            "run": ["run", scenario, "--out", tmp_path / "out"], "runs": ["runs", tmp_path / "out"]}[command]
    code, out, err = invoke(args, env={"COLUMNS": columns})
    assert code == 0, err
    assert len(out.splitlines()) > 3 and max(map(len, out.splitlines())) >= 40


def test_f_columns_zero_sweep_table(tmp_path, finished_sweep):
    code, out, err = invoke(["sweep", finished_sweep / "small.yaml", "--out", finished_sweep / "out", "--resume",
                             "--dry-run"], env={"COLUMNS": "0"})
    assert code == 0, err
    assert "small" in out and len(out.splitlines()) > 3


@pytest.mark.parametrize("args", [["--help"], ["-h"], ["--version"], [], ["train", "--help"], ["sweep", "-h"],
                                  ["runs", "--help"], ["scenarios"]], ids=lambda a: " ".join(a) or "none")
def test_f_help_and_version_into_a_closed_pipe(args):
    proc = subprocess.Popen([sys.executable, "-m", "lstm_cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before the first byte
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) in (0, 141, -signal.SIGPIPE), err
    assert err == ""


@pytest.mark.parametrize("args", [["train", "--gap", "-1"], ["nosuch"], ["gradients", "--format", "xml"],
                                  ["run", "nosuch-scenario"], ["gradients", "-m", "lstm:hidden=1,hidden=2"],
                                  ["sweep", "remember-gap", "--scheduler", "tcp://"]], ids=" ".join)
def test_f_bad_input_with_stderr_on_dev_full_exits_2(args):
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "lstm_cli", *args], stdout=subprocess.DEVNULL, stderr=full,
                              timeout=60)
    assert proc.returncode == 2


