"""Golden outputs: stdout, stderr and exit code of every command, format and error path.

Recorded on the code before the schema rebuild (``tests/golden/commands.txt``), compared
byte for byte after masking what changes from run to run (wall times, timestamps, the
scratch directory). Regenerate after an intended change with ``python tests/test_golden.py --update``
and list the change in the commit message.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

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
    changed = [name for name, text in results.items() if (GOLDEN / f"{name}.txt").read_text() != text]
    assert not changed, f"output differs from tests/golden/ for: {', '.join(changed)}"


if __name__ == "__main__" and sys.argv[1:] == ["--update"]:
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        for name, text in run_all(Path(scratch)).items():
            (GOLDEN / f"{name}.txt").write_text(text)
