"""Every example in README.md and docs/*.md runs, and prints what the page says.

A fenced ``console`` block is a transcript: each ``$ `` line is a command,
and the lines up to the next ``$ `` are what it prints (stderr first, then
stdout, as a terminal shows a command that writes its table at the end).
The block declares the width it was captured at with ``COLUMNS=N`` on the
command line; without it the command writes to a pipe and prints its full
width. Commands run in order, in one fresh directory per page (so a later
block can read the records an earlier one wrote), with NO_COLOR=1 and
TERM=dumb. Times (``1.2 s``, ``35 ms``) and dates (``2026-12-07 10:04``) are masked. A line ``...`` in a block
stands for any number of lines the page leaves out; no other line may
differ in its words, and its numbers are compared as numbers (``numeric_text``:
full-precision floats to a relative 1e-9, short printed ones exactly unless they
are the two roundings either side of a boundary), so a page holds on another
CPU family. A command must exit 0: an example of a failure shows its code the
way a shell user would, ``...; echo "exit $?"``.

The README's ``python`` blocks run as scripts in a fresh directory (the one
that imports torch only where torch is installed).

A fenced ``bash`` block runs with ``bash -e`` in the same directory and must
exit 0. Console and bash blocks run in the order of the page, so a bash block
can write the file a later console block reads. The checkout's own path
(the ``scenarios`` table names the bundled files) reads ``/path/to/lstm-demo``. The set-up commands of the quick start are not run here (they would
install the package again and run this suite inside itself); CI runs them
from ``.ci/run``, and a test checks that .ci/run runs the same commands.
Blocks that need a tool this machine may lack (a batch scheduler, GNU
parallel, jq) are listed by name in EXTERNAL_TOOLS and run only where the tool
is on PATH; a test checks that no other block is left out.

Every example can be run twice in a row: a command (or bash block) that changed its
directory (wrote a record, a file) runs a second time in a copy of the directory as the
first left it, must exit as the first did, and must print what the page shows, its new
run directory's ``-runN`` suffix aside (a run given no name takes the next free one). A
command that changed nothing would see the same files again and is not run twice. Bash
blocks run with ``pipefail``, so ``lstm-demo ... | jq`` fails when lstm-demo does.

``python tests/test_readme.py --update [PAGE.md ...]`` re-pastes every console
block from the commands' real output (a block with one ``...`` keeps as many lines
before and after it as it had) and lists the blocks it changed.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from numeric_text import same_line  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# blocks that call a tool a user may not have, by the first word of their first
# comment line (the block's name) -> the tool
EXTERNAL_TOOLS = {
    "remember-gap.sbatch": "sbatch",
    "slurm-aggregate": "sbatch",  # aggregates what the array wrote
    "gnu-parallel": "parallel",
    "jq-examples": "jq",
    "jq-loop": "jq",
    "jq-sweep-lines": "jq",
}
# the quick start's set-up: run by .ci/run, not here
SETUP_COMMANDS = ("python3 -m venv", "pip install", "python -m pytest")

# a time and the padding around it (a table cell's padding depends on the time's width); a date
TIME = re.compile(r" *\b\d+(?:\.\d+)?(?: ?)(?:ms|s|min)\b *")
DATE = re.compile(r"\b\d{4}-\d\d-\d\d[ T]\d\d:\d\d(?::\d\d(?:\+00:00)?)?")
FENCE = re.compile(r"^```(\w*)\s*$")
# A block whose numbers hold only on the CPU family it was measured on (a chaotic net: the last
# bit of a sum, which the BLAS kernels order differently, grows step after step) says so on the
# line above its fence; on another BLAS core its words, layout and labels are compared, its
# numbers and bars not (README and docs/records.md: what holds where).
MEASURED_ON = re.compile(r"^<!-- measured on: (\S+) -->$")
NUMBER_OR_BAR = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?|[\u2580-\u259f]+")


def numbers_masked(lines: list[str]) -> list[str]:
    return [" ".join(NUMBER_OR_BAR.sub("#", line).split()) for line in lines]


class Block(NamedTuple):
    page: Path
    line: int  # 1-based line of the opening fence
    kind: str  # console or bash
    text: str
    measured_on: str | None = None  # `<!-- measured on: CORE -->` above the fence: a chaotic net's numbers

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def name(self) -> str | None:
        for line in self.text.splitlines():
            match = re.match(r"#(?!!)\s*(\S+)", line)
            if match:
                return match.group(1).rstrip(":")
        return None


def blocks(kinds=("console", "bash")) -> list[Block]:
    found = []
    for page in PAGES:
        lines = page.read_text(encoding="utf-8").splitlines()
        i = 0
        while i < len(lines):
            match = FENCE.match(lines[i])
            if not match:
                i += 1
                continue
            start, kind = i, match.group(1)
            i += 1
            body = []
            while i < len(lines) and not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            i += 1
            if kind in kinds:
                marker = MEASURED_ON.match(lines[start - 1]) if start else None
                found.append(Block(page, start + 1, kind, "\n".join(body), marker and marker.group(1)))
    return found


def transcript(block: Block) -> list[tuple[str, list[str]]]:
    """[(command, expected lines)] of a console block."""
    steps: list[tuple[str, list[str]]] = []
    for line in block.text.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif steps:
            steps[-1][1].append(line)
        elif line.strip():
            raise AssertionError(f"{block.id}: output before the first '$ ' command: {line!r}")
    return steps


CHECKOUT = "/path/to/lstm-demo"


RULE = re.compile("─+")


def masked(line: str) -> str:
    """Times and dates masked, and a table's rule as one character: its length follows the
    widest cell, such as the checkout's own path in the scenarios table."""
    return RULE.sub("─", TIME.sub(" <time> ", DATE.sub("<date>", line.rstrip())))


def output_lines(done: subprocess.CompletedProcess) -> list[str]:
    return (done.stderr + done.stdout).replace(str(ROOT), CHECKOUT).splitlines()


def matches(expected: list[str], actual: list[str]) -> bool:
    """Line-for-line after masking; a '...' line stands for any number of lines."""
    expected = [masked(line) for line in expected]
    actual = [masked(line) for line in actual]
    while expected and expected[-1] == "":
        expected.pop()
    while actual and actual[-1] == "":
        actual.pop()

    def match(i: int, j: int) -> bool:
        if i == len(expected):
            return j == len(actual)
        if expected[i].strip() == "...":
            return any(match(i + 1, k) for k in range(j, len(actual) + 1))
        return j < len(actual) and same_line(expected[i], actual[j]) and match(i + 1, j + 1)

    return match(0, 0)


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "FORCE_COLOR", "TERM", "NO_COLOR")}
    env.update(NO_COLOR="1", TERM="dumb", PYTHONUNBUFFERED="1")
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


@pytest.fixture(scope="module")
def workdirs(tmp_path_factory):
    dirs: dict[Path, Path] = {}

    def for_page(page: Path) -> Path:
        if page not in dirs:
            dirs[page] = tmp_path_factory.mktemp(page.stem)
        return dirs[page]

    return for_page


def run(command: str, cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=environment(), capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


BLOCKS = blocks()  # in page order: a bash block may set up what a later console block reads
CONSOLE = [b for b in BLOCKS if b.kind == "console"]
BASH = [b for b in BLOCKS if b.kind == "bash"]


@pytest.mark.parametrize("block", BLOCKS, ids=[f"{b.kind}:{b.id}" for b in BLOCKS])
def test_block(block, workdirs):
    if block.kind == "console":
        console_block_prints_what_the_page_shows(block, workdirs)
    else:
        bash_block_runs(block, workdirs)


def state(directory: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``directory`` with its size and modification time: what a command changed."""
    found = {}
    for path in directory.rglob("*"):
        try:
            info = path.lstat()
        except OSError:
            continue
        found[str(path.relative_to(directory))] = (info.st_size, info.st_mtime_ns)
    return found


RUN_SUFFIX = re.compile(r"-run\d+( *)")


def without_run_suffix(line: str) -> str:
    """A second run's line as the first printed it: ``runs/x-run2/`` -> ``runs/x/``, the suffix's width
    given back to a table cell's padding."""
    return RUN_SUFFIX.sub(lambda m: " " * (len(m.group(0)) if m.group(1) else 0), line)


def again_in_a_copy(command: str, cwd: Path, before: dict) -> subprocess.CompletedProcess | None:
    """``command`` run a second time in a copy of ``cwd`` as the first run left it; None when the
    first run changed nothing there (the second would see the same files, and print the same)."""
    if state(cwd) == before:
        return None
    import tempfile

    scratch = Path(tempfile.mkdtemp(prefix="again-"))
    try:
        copy = scratch / cwd.name
        shutil.copytree(cwd, copy, symlinks=True)
        return run(command, copy)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def console_block_prints_what_the_page_shows(block, workdirs):
    steps = transcript(block)
    assert steps, f"{block.id}: a console block with no '$ ' command"
    for command, expected in steps:
        cwd = workdirs(block.page)
        before = state(cwd)
        done = run(command, cwd)
        assert done.returncode == 0, f"{block.id}: `{command}` exited {done.returncode}:\n{done.stderr}"
        actual = output_lines(done)
        if block.measured_on is not None and block.measured_on != blas_core():
            expected, actual = numbers_masked(expected), numbers_masked(actual)
        assert matches(expected, actual), (
            f"{block.id}: `{command}` prints something else than the page shows.\n"
            f"--- page\n" + "\n".join(expected) + "\n--- actual\n" + "\n".join(actual))
        again = again_in_a_copy(command, cwd, before)
        if again is not None:
            assert again.returncode == 0, f"{block.id}: `{command}` run twice exited {again.returncode}:\n{again.stderr}"
            second = [without_run_suffix(line) for line in output_lines(again)]
            assert matches(expected, second), (
                f"{block.id}: `{command}` run a second time prints something else than the page shows.\n"
                f"--- page\n" + "\n".join(expected) + "\n--- second run\n" + "\n".join(second))


def blas_core() -> str:
    """The BLAS core type the commands run on (they inherit this process's environment)."""
    done = subprocess.run([sys.executable, "-c", "from lstm_cli import provenance; print(provenance.blas_core())"],
                          capture_output=True, text=True, env=environment(), check=True)
    return done.stdout.strip()


def _setup_only(block: Block) -> bool:
    """The quick start: a block that installs the package."""
    return "pip install" in block.text


def _needs(block: Block) -> str | None:
    return EXTERNAL_TOOLS.get(block.name or "")


def bash_block_runs(block, workdirs):
    tool = _needs(block)
    if tool and shutil.which(tool) is None:
        pytest.skip(f"{block.name} needs {tool}, which this machine lacks")
    lines = block.text.splitlines()
    if _setup_only(block):
        # the quick start: run only its lstm-demo part here (.ci/run does the install)
        demo = [part.strip() for c in lines for part in c.split("&&") if "lstm-demo" in part]
        lines = demo
        if not lines:
            return
    if importlib.util.find_spec("matplotlib") is None:  # the plot extra is optional: without it, the rest runs
        lines = [line for line in lines if "--plot" not in line]
    cwd = workdirs(block.page)
    # a block of independent one-line commands runs line by line, so that only the lines that wrote
    # something run twice; any other block (a loop, a variable, a continued line) as one script
    for script in [line for line in lines if line.strip() and not line.lstrip().startswith("#")] \
            if _simple(lines) else ["\n".join(lines)]:
        script = "set -e -o pipefail\n" + script
        before = state(cwd)
        done = run(script, cwd)
        assert done.returncode == 0, f"{block.id} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        again = again_in_a_copy(script, cwd, before)
        assert again is None or again.returncode == 0, \
            f"{block.id} run twice exited {again.returncode}:\n{again.stdout}\n{again.stderr}"


def _simple(lines: list[str]) -> bool:
    """Whether every line of a bash block is a command of its own (no loop, no variable, no cd, no
    continued line), so that running them one by one is running the block."""
    shell = re.compile(r"^\s*(for|while|until|if|then|else|elif|fi|do|done|case|esac|cd|export|function)\b|"
                       r"^\s*\w+=|\\$|[{}]\s*$|<<")
    return not any(shell.search(line) for line in lines if not line.lstrip().startswith("#"))


# ---- every --help example, twice in a row ----

# in the order a user meets them, so that an example can use what an earlier one made
# (scenarios show ... > my-sweep.yaml before run my-sweep.yaml; train before gradients --from)
HELP_ORDER = ("SCENARIOS", "TRAIN", "RUN", "SWEEP", "GRADIENTS", "RUNS", "INSPECT", "REPORT")


def help_examples() -> list[str]:
    from lstm_cli import helptext

    examples = []
    for name in HELP_ORDER:
        text = getattr(helptext, name).split("Examples:", 1)[1]
        examples += [line.strip() for line in text.splitlines() if line.strip().startswith("lstm-demo ")]
    return examples


def test_every_command_help_example_is_in_the_list():
    from lstm_cli import helptext

    commands = [value for name, value in vars(helptext).items() if name.isupper() and isinstance(value, str)
                and "\nExamples:\n" in value]
    assert len(commands) == len(HELP_ORDER), "a command's help with examples is missing from HELP_ORDER"


def _serial(units, workers, run, on_start=None, on_done=None):
    """``pool.run_jobs``' interface, in this process (so the small budget below holds in the runs)."""
    outcomes = {}
    for unit in units:
        if on_start:
            on_start(unit)
        try:
            record, error = run(unit), None
        except Exception as err:  # noqa: BLE001 - the pool reports a run's failure the same way
            record, error = None, f"{type(err).__name__}: {err}"
        outcomes[unit.index] = (record, error)
        if on_done:
            on_done(unit, record, error)
    return outcomes


@pytest.fixture
def small_budget(monkeypatch):
    """Every training run a few steps on small batches; sweeps in this process (Dask's too): what the
    examples print is not checked here, only that each runs, and runs again."""
    from lstm_cli import api, pool, train
    from lstm_cli.scenario.grid import Scenario

    resolved = train.TrainConfig.resolved

    def small(self):
        full = resolved(self)
        return dataclasses.replace(full, steps=min(full.steps, 4), eval_every=2, batch=min(full.batch, 8),
                                   eval_size=min(full.eval_size, 8), probe_size=min(full.probe_size, 2))

    monkeypatch.setattr(train.TrainConfig, "resolved", small)
    grid = Scenario.points
    monkeypatch.setattr(Scenario, "points", lambda self: grid(self)[:8])  # a grid's first 8 runs (--index 7)
    monkeypatch.setattr(pool, "run_jobs", _serial)
    monkeypatch.setattr(api, "executor_for", lambda jobs, scheduler, scheduler_file: _serial if (
        scheduler or scheduler_file) else None)


def test_every_help_example_runs_twice_in_a_row(tmp_path, monkeypatch, small_budget):
    """Each example of each command's --help, twice, in one directory: the second exits 0 as the
    first (a run given no name goes to a new directory); as for the pages, an example that changed
    nothing runs once. The lstm-demo part of a pipe runs; a ``> FILE`` gets its output."""
    import shlex

    from typer.testing import CliRunner

    from lstm_cli.cli import app

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NO_COLOR", "1")
    runner = CliRunner()
    for example in help_examples():
        command = example.split("|")[0]
        command, _, target = command.partition(">")
        args = shlex.split(command)[1:]
        if "--plot" in args and importlib.util.find_spec("matplotlib") is None:
            continue
        for attempt in ("first", "second"):
            before = state(tmp_path)
            result = runner.invoke(app, args)
            assert result.exit_code == 0, f"`{example}` ({attempt} time) exited {result.exit_code}: {result.stderr}"
            if target.strip():
                (tmp_path / target.strip()).write_text(result.stdout, encoding="utf-8")
            if state(tmp_path) == before:  # it changed nothing: a second time would see the same files
                break


README_PYTHON = [b for b in blocks(("python",)) if b.page.name == "README.md"]


@pytest.mark.parametrize("block", README_PYTHON, ids=[b.id for b in README_PYTHON])
def test_readme_python_block_runs(block, tmp_path):
    """The README's Python examples run as they stand (the PyTorch one where torch is installed)."""
    if re.search(r"^import torch\b|^import .*, torch\b", block.text, re.M):
        pytest.importorskip("torch")
    (tmp_path / "example.py").write_text(block.text, encoding="utf-8")
    done = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, env=environment(), capture_output=True,
                          text=True, timeout=240, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"{block.id}:\n{done.stderr}"


def test_only_the_listed_blocks_need_an_outside_tool():
    tools = ("sbatch", "srun", "parallel ", "qsub", "jq")
    needing = {b.name for b in BASH
               if any(re.search(rf"(^|[|;&]\s*)(\w+=\S+\s+)*{t.strip()}\b", b.text, re.M) for t in tools)}
    named = {b.name for b in BASH if _needs(b)}
    assert needing <= named, f"blocks that call an outside tool but are not listed in EXTERNAL_TOOLS: {needing - named}"
    assert named <= {b.name for b in BASH}, "EXTERNAL_TOOLS names a block that no page has"


def test_ci_runs_the_quick_start_set_up():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quick = next(b for b in BASH if b.page.name == "README.md" and _setup_only(b))
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    section = readme[readme.index("## Quick start"):readme.index("\n## ", readme.index("## Quick start") + 1)]
    assert quick.text in section and "`python -m pytest -q`" in section and "python -m pytest -q" in ci
    assert "command -v jq" in ci, ".ci/run installs jq, so the jq examples run in CI"
    extras = re.search(r'pip install -e "\.\[([\w,]+)\]"', quick.text)
    assert extras, "the quick start installs the package with pip install -e"
    assert "test" in extras.group(1).split(","), "the quick start installs the test extra"
    assert readme.index(quick.text.splitlines()[0]) < readme.index("## ", readme.index("Quick start"))


def test_the_readme_is_a_front_door():
    """Under 450 lines, the quick start first and the teaching path second; cites nothing outside."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    sections = [line[3:] for line in readme.splitlines() if line.startswith("## ")]
    assert len(readme.splitlines()) < 450
    assert sections[:2] == ["Quick start", "A teaching path"]
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        assert not re.search(r"DESIGN\.md|STYLE\.md|\bagents?\b", text), page.name
    for link in re.findall(r"\]\(((?!https?:)[^)#]+)\)", readme):
        assert (ROOT / link).exists(), f"README links to {link}, which is not in the repository"


def test_a_second_run_is_compared_without_its_run_suffix():
    assert without_run_suffix("│ run record  │ runs/remember-gap50-lstm-seed0-run2     │") == \
        "│ run record  │ runs/remember-gap50-lstm-seed0          │"
    assert without_run_suffix("records in runs/remember-gap-run12/") == "records in runs/remember-gap/"
    assert not matches(["records in runs/a/"], [without_run_suffix("records in runs/b-run2/")])


def test_the_matcher_can_fail():
    assert matches(["a", "...", "d"], ["a", "b", "c", "d"])
    assert matches(["took 1.5 s"], ["took 22.0 s"])
    assert matches(["| wall time | 8.8 s  |"], ["| wall time | 16.2 s |"])
    assert not matches(["a", "b"], ["a", "c"])
    assert not matches(["a"], ["a", "b"])
    assert not matches(["1.5e-12"], ["1.7e-12"])
    assert matches(["1.5e-12"], ["1.6e-12"])  # the two roundings either side of 1.55e-12
    assert not matches(["1.5e-12 from W_hh"], ["1.5e-12 from tanh'"])
    assert not matches(['"sigma_max": 1.0688077134639788'], ['"sigma_max": 1.0688087134639788'])
    assert matches(['"sigma_max": 1.0688077134639788'], ['"sigma_max": 1.068807713463979'])


def repasted(block: Block, scratch: Path) -> list[str]:
    """A console block's lines re-pasted from the real output (one ``...`` keeps its place)."""
    new: list[str] = []
    for command, expected in transcript(block):
        actual = [line.rstrip() for line in output_lines(run(command, scratch))]
        cuts = [i for i, line in enumerate(expected) if line.strip() == "..."]
        if matches(expected, actual):
            actual = expected
        elif len(cuts) == 1:
            after = len(expected) - cuts[0] - 1
            actual = actual[:cuts[0]] + ["..."] + (actual[len(actual) - after:] if after else [])
        elif cuts:
            print(f"{block.id}: `{command}` has {len(cuts)} cuts: re-paste it by hand")
            actual = expected
        new += ["$ " + command, *actual]
    return new


def update(names: list[str]) -> None:
    """Re-paste every console block (of the pages named, or all) from the real output; print the
    blocks that changed."""
    import tempfile

    for page in [p for p in PAGES if not names or p.name in names]:
        lines = page.read_text(encoding="utf-8").splitlines()
        changes = []
        with tempfile.TemporaryDirectory() as scratch:
            for block in [b for b in BLOCKS if b.page == page]:
                if block.kind == "bash":
                    if not _needs(block) or shutil.which(_needs(block)):
                        bash_block_runs(block, lambda _page: Path(scratch))
                    continue
                old, new = block.text.splitlines(), repasted(block, Path(scratch))
                if new != old:
                    changes.append((block.line, len(old), new))
                    print(f"re-pasted {block.id}")
        for start, length, new in reversed(changes):  # from the bottom, so line numbers above hold
            lines[start:start + length] = new
        if changes:
            page.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    if sys.argv[1:2] != ["--update"]:
        sys.exit("usage: python tests/test_readme.py --update [PAGE.md ...]")
    update(sys.argv[2:])
