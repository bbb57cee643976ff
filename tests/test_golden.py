"""Golden outputs: stdout, stderr and exit code of every command, format and error path.

Recorded on the code before the schema rebuild (``tests/golden/commands.txt``), compared after
masking what changes from run to run (wall times, timestamps, the scratch directory): the words
exactly, the numbers as numbers (``numeric_text``: full-precision floats to a relative 1e-9,
short printed ones exactly unless they are the two roundings on either side of a boundary), so
that the same command on another CPU family, whose BLAS and SIMD loops sum in another order,
compares equal, and any real change does not. Regenerate after an intended change with
``python tests/test_golden.py --update`` and list the change in the commit message.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from numeric_text import differences  # noqa: E402

HERE = Path(__file__).parent
GOLDEN = HERE / "golden"
ENV = {"COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
       "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
DROP = ("FORCE_COLOR", "CLICOLOR_FORCE", "PYTHONWARNINGS")

# what varies between two runs of the same command
MASKS = [
    (re.compile(r'("(?:wall_time|wall_time_to_success|median_wall_time|started|finished|time|elapsed|'
                r'created|seconds)[a-z_]*"\s*:\s*)("[^"]*"|[-0-9.eE+]+|null)'), r"\1<masked>"),
    (re.compile(r"\b\d+(\.\d+)?\s?(s|ms)\b"), "<t>"),
    (re.compile(r"\b\d{4}-\d\d-\d\dT[0-9:.+Z-]+"), "<when>"),
]


def commands() -> list[tuple[str, list[str]]]:
    cases = []
    for line in (GOLDEN / "commands.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, args = line.partition("|")
            cases.append((name.strip(), args.split()))
    return cases


def mask(text: str, scratch: Path) -> str:
    text = text.replace(str(scratch), "<scratch>").replace(str(HERE.parent), "<repo>")
    for pattern, replacement in MASKS:
        text = pattern.sub(replacement, text)
    return text


def run_all(scratch: Path) -> dict[str, str]:
    shutil.copytree(HERE / "data", scratch / "data")
    env = {k: v for k, v in os.environ.items() if k not in DROP} | ENV
    results = {}
    for name, args in commands():
        proc = subprocess.run([str(Path(sys.executable).parent / "lstm-demo"), *args], cwd=scratch, env=env,
                              capture_output=True, text=True, timeout=120)
        results[name] = (f"$ lstm-demo {' '.join(args)}\nexit {proc.returncode}\n"
                         f"--- stdout\n{mask(proc.stdout, scratch)}--- stderr\n{mask(proc.stderr, scratch)}")
    return results


def test_golden_outputs(tmp_path):
    results = run_all(tmp_path)
    assert len(results) >= 30
    changed = {name: differences((GOLDEN / f"{name}.txt").read_text(), text) for name, text in results.items()}
    changed = {name: found for name, found in changed.items() if found}
    assert not changed, "output differs from tests/golden/ for: " + "\n".join(
        f"{name}:\n" + "\n".join(found[:5]) for name, found in changed.items())


# ---- the comparison can fail: on the recorded goldens themselves ----

FULL_PRECISION = re.compile(r"(?<![\w.])-?\d+\.\d{12,}(?:e[-+]?\d+)?")


def _golden(name: str) -> str:
    return (GOLDEN / f"{name}.txt").read_text()


def _first_full_precision(text: str) -> re.Match:
    match = FULL_PRECISION.search(text.partition("--- stdout")[2])
    assert match, "the golden has a full-precision float"
    return match


@pytest.mark.parametrize("name", ["gradients-json", "gradients-csv", "run-vanishing-json"])
@pytest.mark.parametrize("change", ["relative", "absolute"])
def test_a_change_of_1e_6_in_a_full_precision_golden_number_fails(name, change):
    text = _golden(name)
    assert differences(text, text) == []
    match = _first_full_precision(text)
    start = text.index("--- stdout") + len("--- stdout") + match.start()
    value = float(match.group())
    changed = value * (1 + 1e-6) if change == "relative" else value + 1e-6
    mutated = text[:start] + repr(changed) + text[start + len(match.group()):]
    assert differences(text, mutated), f"{match.group()} -> {changed!r} passed"


@pytest.mark.parametrize("name", ["gradients-json", "gradients-table", "run-vanishing"])
def test_a_changed_word_fails(name):
    text = _golden(name)
    for old, new in (("VANISHING", "EXPLODING"), ("lost", "gained"), ('"rnn"', '"gru"'), ("tanh", "relu")):
        if old in text:
            assert differences(text, text.replace(old, new, 1)), f"{old} -> {new} passed"
            return
    raise AssertionError(f"{name}: none of the words to change")


def test_noise_of_another_cpu_family_passes_and_a_real_change_does_not():
    # measured on an AVX2 machine against the AVX-512 recording (issue: sigma_max)
    assert not differences('"sigma_max": 1.0688077134639788,', '"sigma_max": 1.068807713463979,')
    assert not differences("0.9012345678901234,1e-05", "0.9012345678901256,1e-05")
    assert differences('"sigma_max": 1.0688077134639788,', '"sigma_max": 1.0688087134639788,')
    # short printed numbers: the two roundings either side of a boundary pass, anything more fails
    assert not differences("  5    2.8e-02  -1.2", "  5    2.9e-02  -1.2")
    assert not differences("mean 0.999 at", "mean 1 at")
    assert differences("  5    2.8e-02  -1.2", "  5    3.0e-02  -1.2")
    assert differences("x0.591 per step", "x0.592 per step")  # part of a word: text, exact
    assert differences("from 12 steps back", "from 13 steps back")  # integers are exact
    assert differences("exit 0", "exit 1")
    assert differences("a  b", "a b")  # spacing is text
    assert not differences(" 0.999 |", "     1 |")  # a right-justified cell, re-padded


if __name__ == "__main__" and sys.argv[1:] == ["--update"]:
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        for name, text in run_all(Path(scratch)).items():
            (GOLDEN / f"{name}.txt").write_text(text)
