"""Hostile input, shared disks and dying processes (issue 10): what a careless or hostile user,
a full disk, a colleague's second sweep or a SIGKILL does to the tool.

Every case asserts the exit code, exactly one non-empty line on stderr (none for the few cases
that must succeed silently) and no traceback; a case about records also asserts that nothing
was written outside --out, that an earlier record is byte for byte unchanged unless the user
asked to replace it, and that new files get the umask's mode (0644 under umask 022).

Cases run through Typer's CliRunner in this process unless they need a real one (a file-size
limit, dropped privileges, a lock held by another process, a signal): those use subprocesses.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lstm_cli import rundir, runs, sweep
from lstm_cli.checkpoint import CHECKPOINT, load_checkpoint
from lstm_cli.files import atomic_write_text, lock_path
from lstm_cli.cli import app
from lstm_cli.errors import BadInput
from lstm_cli.models import ModelSpec
from lstm_cli.train import TrainConfig

runner = CliRunner()

TINY_ARGS = ["--gap", "5", "--hidden", "4", "--steps", "10", "--eval-every", "5", "--eval-size", "8",
             "--batch", "8", "-q", "-f", "json"]
TINY = TrainConfig(task="remember", gap=5, model=ModelSpec(hidden=4), batch=8, steps=10, eval_every=5,
                   eval_size=8, probe_size=4)


# ---- helpers ----

def invoke(args: list[str]) -> tuple[int, str, str]:
    result = runner.invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a traceback: fail with it
    return result.exit_code, result.stdout, result.stderr


def cli_process(args: list[str], shell_prefix: str = "", env: dict | None = None, timeout: float = 60,
                prefix: list[str] = (), **kwargs) -> tuple[int, str, str]:
    """``python -m lstm_cli ARGS`` in a real process, after the command ``prefix`` (setpriv ...);
    ``shell_prefix`` runs before it in bash (``ulimit -f 2;``)."""
    command = [*prefix, sys.executable, "-m", "lstm_cli", *map(str, args)]
    if shell_prefix:
        command = ["bash", "-c", shell_prefix + ' exec "$@"', "bash", *command]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, **kwargs)
    return proc.returncode, proc.stdout, proc.stderr


def assert_clean(code: int, stderr: str, expected: int, lines: int = 1) -> None:
    assert "Traceback" not in stderr, stderr
    assert code == expected, (code, stderr)
    found = stderr.splitlines()
    assert len(found) == lines and all(line.strip() for line in found), stderr


def tree(root: Path) -> dict[str, tuple]:
    """{relative path: (mode, sha256 or 'dir')} of everything under ``root`` (a lock file by its
    mode only: it holds the pid of its last holder, for messages)."""
    found = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        if not stat.S_ISREG(info.st_mode):
            digest = "not a file"
        elif path.name.endswith(".lock"):
            digest = "lock"
        else:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        found[str(path.relative_to(root))] = (stat.S_IMODE(info.st_mode), digest)
    return found


def outside(before: dict, after: dict, out: str) -> dict:
    """What changed in the test's directory outside ``out``."""
    def strip(t):
        return {k: v for k, v in t.items() if not (k == out or k.startswith(out + "/"))}
    a, b = strip(before), strip(after)
    return {k: (a.get(k), b.get(k)) for k in set(a) | set(b) if a.get(k) != b.get(k)}


@pytest.fixture(autouse=True)
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture(scope="module")
def earlier(tmp_path_factory) -> Path:
    """A finished record (out/keep), made once and copied into each test that needs it."""
    out = tmp_path_factory.mktemp("earlier") / "out"
    runs.run_training(TINY, out, name="keep")
    return out


@pytest.fixture
def work(tmp_path, earlier, monkeypatch) -> Path:
    shutil.copytree(earlier, tmp_path / "out")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def can_drop_privileges() -> bool:
    if os.geteuid() != 0:
        return True
    probe = subprocess.run(["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner", "true"],
                           capture_output=True) if shutil.which("setpriv") else None
    return probe is not None and probe.returncode == 0


def without_privileges() -> list[str]:
    """A command prefix under which root, too, obeys file modes (setpriv drops the capabilities)."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner"]


# ---- class 4: records ----

RERUNS = [["--gap", "6"], ["--seed", "1"], ["--hidden", "5"], ["--model", "rnn"], [], ["--steps", "12"]]


@pytest.mark.parametrize("change", RERUNS, ids=lambda c: " ".join(c) or "same")
def test_an_existing_record_is_refused_and_kept(work, change):
    before = tree(work)
    code, _, stderr = invoke(["train", *TINY_ARGS, *change, "--out", "out", "--name", "keep"])
    assert_clean(code, stderr, 2)
    assert "out/keep already holds a run record" in stderr and "--overwrite" in stderr
    assert tree(work) == before


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_overwrite_replaces_the_record_with_the_umasks_modes(work, umask, mode):
    os.umask(umask)
    before = tree(work)
    code, stdout, stderr = invoke(["train", *TINY_ARGS, "--gap", "6", "--out", "out", "--name", "keep",
                                   "--overwrite"])
    assert_clean(code, stderr, 0, lines=0)
    assert json.loads(stdout)["gap"] == 6 and rundir.read_result(work / "out" / "keep")["gap"] == 6
    assert outside(before, tree(work), "out") == {}
    for name in rundir.RECORD_FILES:
        assert stat.S_IMODE((work / "out" / "keep" / name).stat().st_mode) == mode, name


def test_a_new_record_gets_mode_0644_under_umask_022(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, stderr = invoke(["train", *TINY_ARGS, "--out", "fresh"])
    assert_clean(code, stderr, 0, lines=0)
    files = [p for p in (tmp_path / "fresh").rglob("*") if p.is_file()]
    assert len(files) == 5  # four record files and the lock beside the run directory
    assert {stat.S_IMODE(p.stat().st_mode) for p in files} == {0o644}


@pytest.mark.parametrize("out", ["afile", "afile/sub", "afile/sub/deeper"])
def test_a_runs_path_that_is_a_file(work, out):
    (work / "afile").write_text("not a directory")
    before = tree(work)
    code, _, stderr = invoke(["train", *TINY_ARGS, "--out", out])
    assert_clean(code, stderr, 2)
    assert "cannot create run directory afile" in stderr and "Not a directory" in stderr
    assert tree(work) == before


@pytest.mark.parametrize("name", ["plain-file", "a-fifo"])
def test_a_run_directory_that_is_not_a_directory(work, name):
    if name == "a-fifo":
        os.mkfifo(work / "out" / name)
    else:
        (work / "out" / name).write_text("x")
    before = tree(work)
    code, _, stderr = invoke(["train", *TINY_ARGS, "--out", "out", "--name", name, "--overwrite"])
    assert_clean(code, stderr, 2)
    assert f"out/{name}" in stderr
    assert tree(work) == before


@pytest.mark.parametrize("member", [rundir.RESULT, rundir.CONFIG, rundir.METRICS, CHECKPOINT])
def test_a_record_file_that_is_a_directory(work, member):
    target = work / "out" / "keep" / member
    target.unlink()
    target.mkdir()
    (target / "inside").write_text("x")
    before = tree(work)
    code, _, stderr = invoke(["train", *TINY_ARGS, "--out", "out", "--name", "keep"])
    assert_clean(code, stderr, 2)  # without --overwrite: an existing record
    assert tree(work) == before
    code, _, stderr = invoke(["train", *TINY_ARGS, "--out", "out", "--name", "keep", "--overwrite"])
    assert_clean(code, stderr, 1)
    assert "out/keep" in stderr
    assert (target / "inside").read_text() == "x"  # never deleted what is not ours
    assert outside(before, tree(work), "out") == {}
    assert (rundir.read_result(work / "out" / "keep") or {}).get("status") != "running"


@pytest.mark.parametrize("name", ["..", ".", "a/b", "../escape", "x\x01y", "tab\there", "n" * 250, "é" * 125,
                                  "back\\slash"])
def test_a_bad_run_name(work, name):
    before = tree(work)
    code, _, stderr = invoke(["train", *TINY_ARGS, "--out", "out", "--name", name])
    assert_clean(code, stderr, 2)
    assert "bad run name" in stderr
    assert tree(work) == before


needs_setpriv = pytest.mark.skipif(not can_drop_privileges(),
                                   reason="root without setpriv cannot be refused a write by file modes")


@needs_setpriv
@pytest.mark.parametrize("overwrite", [True, False])
def test_a_read_only_run_directory(work, overwrite):
    run_dir = work / "out" / "keep"
    run_dir.chmod(0o555)
    try:
        before = tree(work)
        code, _, stderr = cli_process(["train", *TINY_ARGS, "--out", "out", "--name", "keep",
                                       *(["--overwrite"] if overwrite else [])],
                                      cwd=work, prefix=without_privileges())
        assert_clean(code, stderr, 1 if overwrite else 2)
        assert "out/keep" in stderr and ("Permission denied" in stderr or not overwrite)
        assert tree(work) == before  # nothing could be changed, nothing was
        assert rundir.read_result(run_dir)["status"] == "completed"
    finally:
        run_dir.chmod(0o755)


@needs_setpriv
@pytest.mark.parametrize("where", ["out", "out/sub"])
def test_a_read_only_runs_path(work, where):
    (work / "out").chmod(0o555)
    try:
        before = tree(work)
        code, _, stderr = cli_process(["train", *TINY_ARGS, "--out", where],
                                      cwd=work, prefix=without_privileges())
        assert_clean(code, stderr, 2)
        assert "Permission denied" in stderr and where in stderr
        assert tree(work) == before
    finally:
        (work / "out").chmod(0o755)


@pytest.mark.parametrize("blocks", [1, 2, 4])
def test_a_full_disk_fails_the_run_and_says_so(work, blocks):
    before = tree(work)
    code, _, stderr = cli_process(["train", *TINY_ARGS, "--out", "out", "--name", "new"], cwd=work,
                                  shell_prefix=f"ulimit -f {blocks};")
    assert_clean(code, stderr, 1)
    assert "out/new" in stderr and "File too large" in stderr
    result = rundir.read_result(work / "out" / "new")
    assert result is None or result["status"] == "failed"  # never left "running"
    after = tree(work)
    assert outside(before, after, "out") == {}
    assert {k: v for k, v in after.items() if k.startswith("out/keep")} == \
        {k: v for k, v in before.items() if k.startswith("out/keep")}
    assert not list((work / "out" / "new").glob(".*.tmp"))


HOLD_LOCK = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, f"{os.getpid():<20}\\n".encode())  # as files.locked writes it: padded, never truncated
print("held", flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_second_writer_is_refused_while_the_first_holds_the_lock(work, overwrite):
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(lock_path(work / "out" / "keep"))],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        before = tree(work / "out" / "keep")
        code, _, stderr = invoke(["train", *TINY_ARGS, "--out", "out", "--name", "keep",
                                  *(["--overwrite"] if overwrite else [])])
        assert_clean(code, stderr, 2)
        assert f"being written by another process (pid {holder.pid})" in stderr
        assert tree(work / "out" / "keep") == before
    finally:
        holder.kill()
        holder.wait()
    # the kernel released the lock of the killed holder
    code, _, stderr = invoke(["train", *TINY_ARGS, "--out", "out", "--name", "keep", "--overwrite"])
    assert_clean(code, stderr, 0, lines=0)


# ---- class 6: checkpoints from disk (gradients --from) ----

@pytest.fixture(scope="module")
def arrays(earlier) -> dict[str, np.ndarray]:
    with np.load(earlier / "keep" / CHECKPOINT, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _model_json(**change) -> np.ndarray:
    model = {"kind": "lstm", "hidden": 4, "activation": "tanh", "init": "uniform", "recurrent_scale": 1.0,
             "forget_bias": 3.0, "chrono": None, "dtype": "float64"}
    model.update(change)
    return np.array(json.dumps(model))


def _config_json(arrays, **change) -> np.ndarray:
    config = json.loads(str(arrays["config"]))
    config.update(change)
    return np.array(json.dumps(config))


CHECKPOINT_CASES = {
    "weight_hh 1-D": lambda a: {**a, "weight_hh_l0": a["weight_hh_l0"].reshape(-1)},
    "weight_hh rows": lambda a: {**a, "weight_hh_l0": a["weight_hh_l0"][:-1]},
    "weight_hh 3-D": lambda a: {**a, "weight_hh_l0": a["weight_hh_l0"][None]},
    "weight_ih columns": lambda a: {**a, "weight_ih_l0": np.zeros((16, 2))},
    "short bias_ih": lambda a: {**a, "bias_ih_l0": a["bias_ih_l0"][:3]},
    "short bias_hh": lambda a: {**a, "bias_hh_l0": a["bias_hh_l0"][:15]},
    "head width": lambda a: {**a, "head.weight": np.zeros((4, 7))},
    "head bias": lambda a: {**a, "head.bias": np.zeros(5)},
    "int8": lambda a: {**a, "weight_hh_l0": a["weight_hh_l0"].astype(np.int8)},
    "bool": lambda a: {**a, "bias_ih_l0": a["bias_ih_l0"] > 0},
    "complex": lambda a: {**a, "weight_ih_l0": a["weight_ih_l0"].astype(np.complex128)},
    "str": lambda a: {**a, "head.bias": a["head.bias"].astype(str)},
    "float16": lambda a: {**a, "head.weight": a["head.weight"].astype(np.float16)},
    "float32 in a float64 model": lambda a: {**a, "weight_hh_l0": a["weight_hh_l0"].astype(np.float32)},
    "big-endian": lambda a: {**a, "weight_hh_l0": a["weight_hh_l0"].astype(">f8")},
    "missing weight_ih": lambda a: {k: v for k, v in a.items() if k != "weight_ih_l0"},
    "missing head.bias": lambda a: {k: v for k, v in a.items() if k != "head.bias"},
    "missing model": lambda a: {k: v for k, v in a.items() if k != "model"},
    "extra key": lambda a: {**a, "evil": np.zeros(3)},
    "model not JSON": lambda a: {**a, "model": np.array("{not json")},
    "model a list": lambda a: {**a, "model": np.array("[1, 2]")},
    "model unknown key": lambda a: {**a, "model": _model_json(evil=1)},
    "model hidden -1": lambda a: {**a, "model": _model_json(hidden=-1)},
    "model kind gru": lambda a: {**a, "model": _model_json(kind="gru")},
    "model deeply nested": lambda a: {**a, "model": np.array("[" * 3000 + "]" * 3000)},
    "model an array": lambda a: {**a, "model": np.zeros(3)},
    "model hidden 5": lambda a: {**a, "model": _model_json(hidden=5)},
    "config gap 10**7": lambda a: {**a, "config": _config_json(a, gap=10**7)},
    "config gap -5": lambda a: {**a, "config": _config_json(a, gap=-5)},
    "config task": lambda a: {**a, "config": _config_json(a, task="nope")},
    "config batch huge": lambda a: {**a, "config": _config_json(a, probe_size=10**9)},
}


@pytest.mark.parametrize("case", sorted(CHECKPOINT_CASES))
def test_a_bad_checkpoint_is_refused_before_use(tmp_path, arrays, case):
    np.savez(tmp_path / CHECKPOINT, **CHECKPOINT_CASES[case](dict(arrays)))
    code, stdout, stderr = invoke(["gradients", "--from", tmp_path, "--format", "json"])
    assert_clean(code, stderr, 2)
    assert str(tmp_path) in stderr and stdout == ""


def _forged_npz(path: Path, arrays: dict, name: str, shape: tuple) -> None:
    """A small .npz whose zip directory and .npy header claim ``name`` is an array of ``shape``
    (as a 3 MB npz of zeros holding a 3 GB array does), without writing its data."""
    header = np.lib.format.header_data_from_array_1_0(np.zeros(0))
    header["shape"] = shape
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    npy_header = buffer.getvalue()
    claimed = len(npy_header) + 8 * int(np.prod(shape))
    with zipfile.ZipFile(path, "w") as archive:
        for key, value in arrays.items():
            if key != name:
                with archive.open(key + ".npy", "w") as member:
                    np.lib.format.write_array(member, np.asanyarray(value), allow_pickle=False)
        archive.writestr(name + ".npy", npy_header + b"\0" * 64)
    data = bytearray(path.read_bytes())  # the central directory's uncompressed size of that member
    target = (name + ".npy").encode()
    entry = data.index(b"PK\x01\x02")
    while data[entry + 46:entry + 46 + len(target)] != target:
        entry = data.index(b"PK\x01\x02", entry + 4)
    data[entry + 24:entry + 28] = claimed.to_bytes(4, "little")
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name,shape", [("head.bias", (400_000_000,)), ("weight_hh_l0", (16, 30_000_000)),
                                        ("weight_ih_l0", (20_000, 20_000))])
def test_a_checkpoint_claiming_gigabytes_is_refused_at_once(tmp_path, arrays, name, shape):
    _forged_npz(tmp_path / CHECKPOINT, arrays, name, shape)
    assert (tmp_path / CHECKPOINT).stat().st_size < 10_000
    start = time.perf_counter()
    code, _, stderr = invoke(["gradients", "--from", tmp_path])
    assert_clean(code, stderr, 2)
    assert "shape" in stderr and time.perf_counter() - start < 5


def test_a_consistent_but_huge_model_is_refused_by_memory(tmp_path, arrays):
    hidden = 10_000  # weight_hh alone 3.2 GB
    big = {**arrays, "model": _model_json(hidden=hidden)}
    _forged_npz(tmp_path / CHECKPOINT, {k: v for k, v in big.items() if k != "weight_hh_l0"},
                "weight_hh_l0", (4 * hidden, hidden))
    code, _, stderr = invoke(["gradients", "--from", tmp_path])
    assert_clean(code, stderr, 2)  # the other members' shapes or the memory limit, never a load


@pytest.mark.parametrize("what", ["fifo", "dev-zero", "directory", "empty", "truncated", "random", "text"])
def test_a_checkpoint_file_that_is_not_a_checkpoint(tmp_path, earlier, what):
    target = tmp_path / "run" / CHECKPOINT
    target.parent.mkdir()
    if what == "fifo":
        os.mkfifo(target)
    elif what == "dev-zero":
        target.symlink_to("/dev/zero")
    elif what == "directory":
        target.mkdir()
    elif what == "empty":
        target.write_bytes(b"")
    elif what == "truncated":
        target.write_bytes((earlier / "keep" / CHECKPOINT).read_bytes()[:1500])
    elif what == "random":
        target.write_bytes(np.random.default_rng(0).bytes(4096))
    else:
        target.write_text("weight_hh: [1, 2, 3]\n")
    start = time.perf_counter()
    code, _, stderr = invoke(["gradients", "--from", target.parent])
    assert_clean(code, stderr, 2)
    assert "checkpoint" in stderr and time.perf_counter() - start < 5


# ---- dying processes, two writers, the config-then-result window ----

def _fork(work) -> int:
    """Run ``work()`` in a forked child (this process's imports, none of its start-up cost)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 0
        try:
            work()
        except BaseException:  # noqa: BLE001 - the child must never return into pytest
            code = 1
        os._exit(code)
    return pid


def _kill_at(pid: int, delay: float) -> None:
    time.sleep(delay)
    with contextlib.suppress(ProcessLookupError):  # it may have finished already
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def assert_records_whole(root: Path) -> int:
    """Every record under ``root`` parses, every completed one has a loadable checkpoint and the
    settings of its config.yaml; returns how many are completed."""
    completed = 0
    for config_path in root.rglob(rundir.CONFIG):
        run_dir = config_path.parent
        config = rundir.read_config(run_dir)
        assert config is not None, run_dir
        if (run_dir / rundir.METRICS).exists():  # killed between config.yaml and metrics.jsonl: not yet
            for line in (run_dir / rundir.METRICS).read_text().splitlines():
                json.loads(line)  # no torn or interleaved line
        if (run_dir / rundir.RESULT).exists():
            result = rundir.read_result(run_dir)
            assert result is not None and result["status"] in rundir.STATUSES, run_dir
            if result["status"] == "completed":
                completed += 1
                checkpoint = load_checkpoint(run_dir)
                assert checkpoint.config is not None and checkpoint.config.seed == config["seed"] == result["seed"]
                assert result["gap"] == config["gap"]
    return completed


def test_train_killed_at_50_random_moments(tmp_path):
    rng = random.Random(10)
    out = tmp_path / "out"
    moments = []
    for i in range(50):  # each kill interrupts a run that replaces the one before, with other settings
        config = TrainConfig(task="remember", gap=5 + i % 3, model=ModelSpec(hidden=4), batch=8, steps=40,
                             eval_every=5, eval_size=8, probe_size=4, seed=i % 2)
        pid = _fork(lambda: runs.run_training(config, out, name="k", existing="overwrite"))
        moments.append(rng.uniform(0.0, 0.3))
        _kill_at(pid, moments[-1])
        assert_records_whole(out)
    final = TrainConfig(task="remember", gap=5, model=ModelSpec(hidden=4), batch=8, steps=40, eval_every=5,
                        eval_size=8, probe_size=4)
    record = runs.run_training(final, out, name="k", existing="resume")
    assert record["status"] == "completed" and assert_records_whole(out) == 1
    assert not list(out.rglob("*.tmp"))


SWEEP_YAML = """\
description: a tiny sweep
task: remember
gap: 4
model: {{hidden: 4}}
train: {{steps: {steps}, eval_every: 10, eval_size: 8, probe_size: 4, batch: 8}}
sweep:
  model: [rnn, lstm]
  seed: 0..{last_seed}
"""


def _load(path: Path):
    from lstm_cli import scenario

    return scenario.load(path)


def test_sweep_killed_at_50_random_moments(tmp_path):
    rng = random.Random(11)
    path = tmp_path / "killed.yaml"
    path.write_text(SWEEP_YAML.format(steps=30, last_seed=2))
    scenario = _load(path)
    out = tmp_path / "out"
    for _ in range(50):
        pid = _fork(lambda: sweep.run_sweep(scenario, out, jobs=2, resume=True))
        _kill_at(pid, rng.uniform(0.0, 1.0))
        if out.exists():
            assert_records_whole(out)
    time.sleep(0.6)  # the orphaned workers of the last sweep notice within 0.5 s and exit
    result = sweep.run_sweep(scenario, out, jobs=2, resume=True)
    assert not result.failures and len(result.outcomes) == 6
    assert assert_records_whole(out) == 6
    assert not list(out.rglob("*.tmp"))
    assert [r["runs"] for r in result.summary] == [3, 3]


def test_two_sweeps_into_one_out_do_every_run_once(tmp_path):
    path = tmp_path / "both.yaml"
    path.write_text(SWEEP_YAML.format(steps=60, last_seed=3))
    command = [sys.executable, "-m", "lstm_cli", "sweep", str(path), "--jobs", "2", "--out", str(tmp_path / "out"),
               "--resume", "--format", "jsonl"]
    procs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], [err for _, err in outputs]
    ran: dict[str, int] = {}
    for _, stderr in outputs:
        assert "Traceback" not in stderr
        for line in stderr.splitlines():
            if line.startswith("[") and ": kept:" not in line:
                key = line.split("] ")[1].split(":")[0]
                ran[key] = ran.get(key, 0) + 1
    sweep_dir = tmp_path / "out" / "both"
    keys = sorted(p.name for p in sweep_dir.iterdir() if p.is_dir())
    assert len(keys) == 8 and sorted(ran) == keys and set(ran.values()) == {1}, ran  # every run done once
    for key in keys:
        steps = [row["step"] for row in rundir.read_metrics(sweep_dir / key)]
        assert steps == sorted(set(steps)) and steps[0] == 0, (key, steps)
        assert rundir.read_result(sweep_dir / key)["status"] == "completed"
    summaries = [[row for row in map(json.loads, stdout.splitlines()) if row["type"] == "summary"]
                 for stdout, _ in outputs]
    strip = [[{k: v for k, v in row.items() if "seconds" not in k} for row in rows] for rows in summaries]
    assert strip[0] == strip[1] and [r["runs"] for r in summaries[0]] == [4, 4]


class Killed(BaseException):
    """A SIGKILL, as far as the code under test can tell: nothing catches it."""


def test_a_kill_between_config_and_result_never_keeps_a_stale_result(tmp_path, monkeypatch):
    path = tmp_path / "window.yaml"
    path.write_text(SWEEP_YAML.format(steps=30, last_seed=2))
    out, clean_out = tmp_path / "out", tmp_path / "clean"
    first = sweep.run_sweep(_load(path), out, jobs=2)
    assert not first.failures
    changed = _load(path)
    from lstm_cli import scenario as scenarios

    changed = scenarios.apply_overrides(changed, ["train.steps=31"])
    point = changed.points()[3]
    real_write = atomic_write_text

    def write_then_die(target, text):
        real_write(target, text)
        if Path(target).name == rundir.CONFIG:
            raise Killed  # the process dies right after replacing config.yaml

    monkeypatch.setattr(runs, "atomic_write_text", write_then_die)
    with pytest.raises(Killed):
        runs.run_training(point.train_config(), out / changed.name, name=point.key, existing="overwrite")
    monkeypatch.undo()
    run_dir = out / changed.name / point.key
    assert rundir.read_config(run_dir)["steps"] == 31
    assert rundir.read_result(run_dir) is None  # the old "completed" result went first

    # every other point finished with steps 30: resuming with 31 is refused, never a silent
    # replacement of finished results (issue 22); the killed run stays without a result
    others = {p.key: rundir.read_result(out / changed.name / p.key) for p in changed.points() if p.key != point.key}
    with pytest.raises(BadInput, match="other settings"):
        sweep.run_sweep(changed, out, jobs=2, resume=True)
    assert {key: rundir.read_result(out / changed.name / key) for key in others} == others
    assert rundir.read_result(run_dir) is None
    # resumed with the settings they were made with, the five are kept and the killed one runs again
    resumed = sweep.run_sweep(_load(path), out, jobs=2, resume=True)
    assert resumed.skipped == 5 and resumed.ran == 1
    clean = sweep.run_sweep(_load(path), clean_out, jobs=2)

    def comparable(summary):
        return [{k: v for k, v in row.items() if "seconds" not in k} for row in summary]

    assert comparable(resumed.summary) == comparable(clean.summary)
    assert rundir.read_result(run_dir)["max_steps"] == 30


# ---- class 1: sizes (refused before anything is allocated) ----

SIZE_CASES = [
    ["gradients", "--gap", "1000000000"], ["gradients", "--gap", "10000000"], ["gradients", "--gap", "1000000"],
    ["gradients", "--hidden", "100000"], ["gradients", "--batch", "1000000"],
    ["gradients", "-m", "lstm:hidden=50000"], ["gradients", "--task", "adding", "--gap", "30000000"],
    ["train", "--eval-size", "100000000"], ["train", "--gap", "100000", "--hidden", "400"],
    ["train", "--batch", "10000000"], ["train", "--hidden", "200000"],
    ["sweep", "remember-gap", "--set", "seed=0..99999999999"], ["sweep", "remember-gap", "--set", "seed=0..99999999999",
                                                                "--dry-run"],
    ["sweep", "remember-gap", "--set", "gap=1..10000000", "--list-runs"],
    ["run", "remember-gap", "--set", "seed=0..99999999999", "--index", "3"],
    ["sweep", "remember-gap", "--set", "gap=100000000", "--set", "seed=0"],
]


@pytest.mark.parametrize("args", SIZE_CASES, ids=" ".join)
def test_a_size_beyond_reason_is_refused_at_once(tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    start = time.perf_counter()
    code, stdout, stderr = invoke([*args, "--out", "out"] if args[0] in ("train", "sweep", "run") else args)
    assert_clean(code, stderr, 2)
    assert time.perf_counter() - start < 10 and stdout == ""
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("limit,code", [("1M", 2), ("abc", 2), ("10G", 0), ("-5", 2)])
def test_the_memory_limit_can_be_set(monkeypatch, limit, code):
    monkeypatch.setenv("LSTM_DEMO_MEMORY_LIMIT", limit)
    code_, _, stderr = invoke(["gradients", "--gap", "20", "--batch", "64", "--format", "json"])
    assert_clean(code_, stderr, code, lines=1 if code else 0)
    if code:
        assert "LSTM_DEMO_MEMORY_LIMIT" in stderr


# ---- class 2: values accepted in one place and crashing in another ----

VALUE_CASES = [
    ["gradients", "--chrono", "inf"], ["gradients", "--chrono", "nan"], ["gradients", "--chrono", "-inf"],
    ["gradients", "--chrono", "1e400"], ["gradients", "--chrono", "2"], ["gradients", "-m", "lstm:chrono=inf"],
    ["gradients", "-m", "lstm:forget_bias=nan"], ["gradients", "--forget-bias", "inf"],
    ["gradients", "--recurrent-scale", "-1"], ["gradients", "--recurrent-scale", "0"],
    ["gradients", "--recurrent-scale", "nan"], ["gradients", "-m", "rnn:recurrent_scale=-2"],
    ["gradients", "--seed", "-1"], ["gradients", "--seed", "4294967296"], ["gradients", "--seed", "99999999999999999999"],
    ["gradients", "--hidden", "0"], ["gradients", "--batch", "-3"], ["gradients", "--gap", "-1"],
    ["train", "--seed", "-1"], ["train", "--lr", "inf"], ["train", "--lr", "nan"], ["train", "--lr", "-1"],
    ["train", "--clip", "-1"], ["train", "--clip", "nan"], ["train", "--momentum", "1"], ["train", "--steps", "0"],
    ["train", "--chrono", "inf"], ["train", "--recurrent-scale", "-1"], ["train", "--eval-every", "0"],
]


@pytest.mark.parametrize("args", VALUE_CASES, ids=" ".join)
def test_a_bad_value_is_refused_where_it_enters(tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    code, stdout, stderr = invoke(args)
    assert_clean(code, stderr, 2)
    assert stdout == "" and not (tmp_path / "runs").exists()


SCENARIO = """\
description: hostile
task: remember
gap: 5
model: {hidden: 4}
train: {steps: 2, eval_every: 1, eval_size: 4, probe_size: 2, batch: 4}
"""

YAML_CASES = {
    "int tag on text": "gap: !!int abc\n",
    "float tag on text": "gap: !!float abc\n",
    "binary literal": "gap: !!int 0b101\n",
    "5000 digits": "gap: " + "9" * 5000 + "\n",
    "5000-digit seed": "seed: " + "1" * 5000 + "\n",
    "5000 digits in a list": "sweep: {seed: [1, " + "7" * 5000 + "]}\n",
    "float tag lr": "train: {lr: !!float abc, steps: 2}\n",
    "int tag hex junk": "gap: !!int 0xZZ\n",
    "float 1e400": "train: {lr: 1e400, steps: 2}\n",
    "nested flow 3000": "gap: " + "[" * 3000 + "]" * 3000 + "\n",
    "nested mappings 3000": "model: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n",
    "nested block 300": "model:\n" + "".join("  " * (i + 1) + "a:\n" for i in range(300)),
    "python object": "train: !!python/object:os.system {}\n",
    "python apply": "train: !!python/object/apply:os.system [echo hi]\n",
    "python name": "model: !!python/name:os.system\n",
    "custom tag": "gap: !custom 5\n",
    "timestamp": "gap: !!timestamp 2001-01-01\n",
    "binary": "description: !!binary aGVsbG8=\n",
    "set": "sweep: !!set {seed, gap}\n",
    "omap": "sweep: !!omap [{seed: [0, 1]}]\n",
    "tagged mapping": "model: !thing {hidden: 4}\n",
}


@pytest.mark.parametrize("case", sorted(YAML_CASES))
def test_hostile_yaml_is_one_line(tmp_path, case):
    path = tmp_path / "hostile.yaml"
    path.write_text(SCENARIO + YAML_CASES[case])
    start = time.perf_counter()
    code, stdout, stderr = invoke(["sweep", path, "--dry-run", "--out", tmp_path / "out"])
    assert_clean(code, stderr, 2)
    assert "hostile.yaml" in stderr and time.perf_counter() - start < 30  # a bound on hangs, not a timing
    assert not (tmp_path / "out").exists()


def test_a_planted_config_yaml_that_resume_reads(tmp_path):
    path = tmp_path / "planted.yaml"
    path.write_text(SWEEP_YAML.format(steps=10, last_seed=0))
    out = tmp_path / "out"
    code, _, stderr = invoke(["sweep", path, "--out", out, "--jobs", "1", "--format", "jsonl"])
    assert code == 0, stderr
    run_dir = out / "planted" / "model=lstm,seed=0"
    (run_dir / rundir.CONFIG).write_text("a: " + "[" * 3000 + "]" * 3000 + "\n")
    code, stdout, stderr = invoke(["sweep", path, "--out", out, "--jobs", "1", "--resume", "--format", "jsonl"])
    assert "Traceback" not in stderr and code == 0, stderr
    assert "1 run(s) to do, 1 kept" in stderr  # the planted record is not trusted: run again
    assert rundir.read_config(run_dir)["seed"] == 0


# ---- class 3: scenario paths ----

@pytest.mark.parametrize("command", [["sweep"], ["sweep", "--dry-run"], ["run"], ["sweep", "--list-runs"]],
                         ids=" ".join)
@pytest.mark.parametrize("filename", ["...yaml", "..yaml", "a\x01b.yaml", "tab\tname.yaml"])
def test_a_scenario_name_that_would_leave_out(tmp_path, filename, command):
    (tmp_path / "inner").mkdir()
    path = tmp_path / "inner" / filename
    path.write_text(SCENARIO)
    out = tmp_path / "inner" / "out"
    before = tree(tmp_path)
    code, _, stderr = invoke([command[0], path, *command[1:], "--out", out])
    assert_clean(code, stderr, 2)
    assert "scenario name" in stderr
    assert tree(tmp_path) == before


@pytest.mark.parametrize("command", ["run", "sweep"])
@pytest.mark.parametrize("what", ["dev-zero", "dev-null", "fifo", "directory", "too-large"])
def test_a_scenario_that_is_not_a_small_regular_file(tmp_path, what, command):
    target = {"dev-zero": Path("/dev/zero"), "dev-null": Path("/dev/null")}.get(what, tmp_path / "s.yaml")
    if what == "fifo":
        os.mkfifo(target)
    elif what == "directory":
        target.mkdir()
    elif what == "too-large":
        target.write_text(SCENARIO + "#" * (2 << 20) + "\n")
    start = time.perf_counter()
    code, _, stderr = invoke([command, target, "--out", tmp_path / "out"])
    assert_clean(code, stderr, 2)
    assert str(target) in stderr and time.perf_counter() - start < 5
    assert not (tmp_path / "out").exists()


LONG_KEYS = """\
sweep:
  model: ['lstm:hidden=4,init=orthogonal,recurrent_scale=1.2345678901234567,forget_bias=2.3456789012345678', rnn]
  train.lr: [0.0012345678901234567, 0.002]
  train.clip: [1.2345678901234567, 2]
  train.momentum: [0.12345678901234567, 0.2]
  train.eval_every: [1234567890, 1]
  train.steps: [1234567891, 2]
  train.batch: [1234567892, 3]
  seed: [1234567890, 1]
"""


@pytest.mark.parametrize("command", [["sweep", "--dry-run"], ["sweep"], ["run"], ["sweep", "--list-runs"]],
                         ids=" ".join)
def test_a_run_key_too_long_for_a_directory_is_refused_at_plan_time(tmp_path, command):
    path = tmp_path / "long.yaml"
    path.write_text(SCENARIO + LONG_KEYS)
    code, _, stderr = invoke([command[0], path, *command[1:], "--out", tmp_path / "out"])
    assert_clean(code, stderr, 2)
    assert "run key" in stderr and "bytes" in stderr and "long.yaml" in stderr
    assert not (tmp_path / "out").exists()


def test_a_sweep_directory_that_is_a_symlink_out_of_out(tmp_path):
    path = tmp_path / "linked.yaml"
    path.write_text(SCENARIO)
    (tmp_path / "out").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "out" / "linked").symlink_to(tmp_path / "elsewhere")
    before = tree(tmp_path)
    code, _, stderr = invoke(["sweep", path, "--out", tmp_path / "out"])
    assert_clean(code, stderr, 2)
    assert "out/linked" in stderr
    assert tree(tmp_path) == before


# ---- class 5: output streams ----

STREAM_COMMANDS = [["gradients", "--gap", "20"], ["gradients", "--gap", "20", "--format", "json"],
                   ["gradients", "--gap", "20", "--format", "csv"], ["scenarios"],
                   ["sweep", "remember-gap", "--list-runs"], ["sweep", "remember-gap", "--dry-run"]]


@pytest.mark.parametrize("args", STREAM_COMMANDS, ids=" ".join)
def test_stdout_closed_is_one_line_exit_1(args):
    proc = subprocess.run([sys.executable, "-m", "lstm_cli", *args], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, timeout=60,
                          preexec_fn=lambda: os.close(1))
    assert_clean(proc.returncode, proc.stderr, 1)
    assert "stdout" in proc.stderr


@pytest.mark.parametrize("args", STREAM_COMMANDS, ids=" ".join)
def test_a_full_stdout_is_one_line_exit_1(args):
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "lstm_cli", *args], stdout=full, stderr=subprocess.PIPE,
                              text=True, timeout=60)
    assert_clean(proc.returncode, proc.stderr, 1)
    assert "No space left on device" in proc.stderr


@pytest.mark.parametrize("args", STREAM_COMMANDS, ids=" ".join)
def test_a_reader_that_stops_early_is_not_a_failure(args):
    command = " ".join(f"'{a}'" for a in [sys.executable, "-m", "lstm_cli", *args])
    proc = subprocess.run(["bash", "-c", f"set -o pipefail; {command} | head -1 > /dev/null; "
                                         f"echo \"${{PIPESTATUS[0]}}\" >&2"],
                          capture_output=True, text=True, timeout=60)
    status = int(proc.stderr.splitlines()[-1])
    assert status in (0, 141) and proc.stderr.splitlines()[:-1] == [], proc.stderr


@pytest.mark.parametrize("env", [{"PYTHONIOENCODING": "ascii"}, {"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0",
                                                                  "PYTHONCOERCECLOCALE": "0"},
                                 {"PYTHONIOENCODING": "latin-1"}], ids=["ascii", "C locale", "latin-1"])
@pytest.mark.parametrize("args", [["gradients", "--gap", "20"], ["scenarios"], ["sweep", "remember-gap", "--dry-run"],
                                  ["train", *TINY_ARGS[:-2], "--format", "table", "--out", "OUT"]],
                         ids=["gradients", "scenarios", "dry-run", "train"])
def test_a_terminal_that_is_not_utf8_gets_ascii(tmp_path, env, args):
    args = [str(tmp_path / "out") if a == "OUT" else a for a in args]
    code, stdout, stderr = cli_process(args, env=env)
    assert_clean(code, stderr, 0, lines=0)
    assert stdout.isascii() and len(stdout.splitlines()) > 3


def test_no_arguments_prints_the_help_and_no_empty_error():
    code, stdout, stderr = cli_process([])
    assert "Traceback" not in stderr and "error" not in stderr
    assert code == 0 and "Usage" in stdout and "gradients" in stdout


def test_ctrl_c_while_still_importing_is_no_traceback():
    rng = random.Random(5)
    interrupted = 0
    for _ in range(12):
        proc = subprocess.Popen([sys.executable, "-m", "lstm_cli", "gradients", "--gap", "20"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        time.sleep(rng.uniform(0.05, 0.4))
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
        if proc.returncode == 0:  # it finished before the signal
            continue
        if proc.returncode == -signal.SIGINT or "init_import_site" in stderr or \
                (proc.returncode == 130 and stderr == ""):
            continue  # the interpreter itself was starting or ending: silent, no traceback
        assert_clean(proc.returncode, stderr, 130)
        assert stderr.strip() == "lstm-demo: interrupted"
        interrupted += 1
    assert interrupted >= 1  # the signal did land in lstm-demo's own start-up or work at least once


# ---- class 7: the same bits whatever the environment ----

@pytest.mark.parametrize("command", ["gradients", "train"])
def test_one_blas_thread_whatever_omp_num_threads_says(tmp_path, monkeypatch, command):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")
    args = ["gradients", "--gap", "5", "--hidden", "4", "--format", "json"] if command == "gradients" else \
        ["train", *TINY_ARGS, "--out", tmp_path / "out"]
    code, _, stderr = invoke(args)
    assert_clean(code, stderr, 0, lines=0)
    assert os.environ["OMP_NUM_THREADS"] == os.environ["OPENBLAS_NUM_THREADS"] == "1"


@pytest.mark.parametrize("threads", ["2", "4"])
def test_train_gives_the_same_bits_as_a_sweep_worker_whatever_the_threads(tmp_path, threads):
    args = ["train", "--gap", "5", "--hidden", "256", "--steps", "3", "--eval-every", "3", "--eval-size", "8",
            "--batch", "64", "-q", "-f", "json", "--name", "t"]
    records = []
    for env in ({"OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads}, {"OMP_NUM_THREADS": "1"}):
        code, stdout, stderr = cli_process([*args, "--out", tmp_path / env["OMP_NUM_THREADS"]], env=env)
        assert_clean(code, stderr, 0, lines=0)
        record = json.loads(stdout)
        records.append({k: v for k, v in record.items() if k not in ("wall_time", "run_dir")})
    assert records[0] == records[1]


@pytest.mark.parametrize("env", [{"NO_COLOR": "1", "FORCE_COLOR": "", "COLUMNS": "200", "TERM": "dumb",
                                  "LC_ALL": "C.UTF-8"}, {"FORCE_COLOR": "1", "COLUMNS": "30"},
                                 {"TERM": "xterm-256color", "COLUMNS": "500"}], ids=["dumb", "forced", "wide"])
def test_the_terminal_does_not_change_the_json(env):
    plain = invoke(["gradients", "--gap", "10", "--format", "json"])
    code, stdout, stderr = cli_process(["gradients", "--gap", "10", "--format", "json"], env=env)
    assert_clean(code, stderr, 0, lines=0)
    assert json.loads(stdout) == json.loads(plain[1])
