"""The Slurm-array recipe of docs/cluster.md, run as written on a simulated array (issue 13, acceptance 5).

The sbatch script and the aggregation command are read from the docs, with a
4-run scenario file in place of ``remember-gap`` and $HOME in a temporary
directory. Every index runs as its own process with SLURM_ARRAY_TASK_ID set, all
at once as an array's tasks would; ``sweep --resume`` then aggregates. No Dask,
no Slurm needed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from test_cli_sweep import small

DOCS = Path(__file__).resolve().parent.parent / "docs" / "cluster.md"
SCENARIO = "remember-gap"


def recipe() -> tuple[str, str]:
    """(the sbatch script, the aggregation command) from docs/cluster.md."""
    blocks = re.findall(r"```bash\n(.*?)```", DOCS.read_text(encoding="utf-8"), flags=re.S)
    script = next(b for b in blocks if "#SBATCH" in b)
    aggregate = next(b for b in blocks if f"\nlstm-demo sweep {SCENARIO}" in "\n" + b and "--resume" in b)
    return script, aggregate


def shell(command: str, env: dict, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(["bash", "-c", command], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kwargs)


def test_a_simulated_job_array_then_resume_gives_the_summary_of_a_sweep(tmp_path):
    path = small(tmp_path)  # 4 runs: model rnn, lstm x seed 0, 1
    script, aggregate = recipe()
    env = {**os.environ, "HOME": str(tmp_path / "home"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    listed = shell(f"lstm-demo sweep {path} --list-runs", env)
    keys = listed.communicate(timeout=60)[0].splitlines()
    assert listed.returncode == 0 and len(keys) == 4

    tasks = [shell(script.replace(SCENARIO, str(path)), {**env, "SLURM_ARRAY_TASK_ID": str(i)})
             for i in range(len(keys))]
    outputs = [task.communicate(timeout=120) for task in tasks]
    assert [task.returncode for task in tasks] == [0] * 4, [err for _, err in outputs]
    assert [json.loads(out)["name"] for out, _ in outputs] == keys  # task i ran run i

    done = shell(aggregate.replace(SCENARIO, str(path)), env)
    _, stderr = done.communicate(timeout=120)
    assert done.returncode == 0, stderr
    assert "0 run(s) to do, 4 kept" in stderr

    reference = shell(f"lstm-demo sweep {path} --jobs 2 --out {tmp_path / 'reference'}", env)
    _, stderr = reference.communicate(timeout=120)
    assert reference.returncode == 0, stderr
    array_summary = summary_without_time(tmp_path / "home" / "runs" / "small")
    assert len(array_summary) == 2
    assert array_summary == summary_without_time(tmp_path / "reference" / "small")


def summary_without_time(sweep_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (sweep_dir / "summary.jsonl").read_text().splitlines()]
    for row in rows:
        row.pop("median_seconds_to_success")
    return rows
