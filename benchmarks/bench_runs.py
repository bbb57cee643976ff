"""Wall time of ``lstm-demo runs`` over many run records, with PyYAML's C loader and without it.

    python benchmarks/bench_runs.py [--records 5000] [--repeat 3] [--formats json,table]

It writes N synthetic records (result.json and config.yaml of the shape ``train`` writes,
copied from one real tiny run, with the name, seed and status varied) into a temporary
directory, then times the whole process ``lstm-demo runs DIR --format F`` for each format,
``--repeat`` times, interleaved, first as installed (libyaml's CSafeLoader when PyYAML was
built with it) and then with the C loader hidden (``LSTM_DEMO_BENCH_NO_LIBYAML=1`` makes the
child import PyYAML without ``CSafeLoader``: the pure-Python fallback). Target (issue 22):
5,000 records in under 3 s with the C loader. Each line: loader, format, records, the wall
times and their median; the load average is printed, since a shared machine's figures are
only as good as its load.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Run in the child: hide CSafeLoader when asked, then the command line itself.
CHILD = """
import os, sys
if os.environ.get("LSTM_DEMO_BENCH_NO_LIBYAML"):
    import yaml
    for name in ("CSafeLoader", "CLoader", "CParser"):
        if hasattr(yaml, name):
            delattr(yaml, name)
sys.argv = ["lstm-demo", *sys.argv[1:]]
from lstm_cli.__main__ import main
main()
"""


def make_records(directory: Path, count: int) -> None:
    """``count`` records under ``directory``, made from one real tiny training run."""
    from lstm_cli import rundir, runs
    from lstm_cli.models import ModelSpec
    from lstm_cli.train import TrainConfig

    seed_dir = directory / ".seed"
    config = TrainConfig(task="remember", gap=3, model=ModelSpec(hidden=4), batch=4, steps=2, eval_every=1,
                         eval_size=4, probe_size=2)
    runs.run_training(config, seed_dir, name="seed")
    result = json.loads((seed_dir / "seed" / rundir.RESULT).read_text())
    config_text = (seed_dir / "seed" / rundir.CONFIG).read_text()
    statuses = ("completed", "completed", "completed", "diverged", "interrupted", "failed")
    for n in range(count):
        run_dir = directory / f"run-{n:06d}"
        run_dir.mkdir()
        (run_dir / rundir.RESULT).write_text(json.dumps({**result, "name": run_dir.name, "seed": n,
                                                       "status": statuses[n % len(statuses)]}, indent=2))
        (run_dir / rundir.CONFIG).write_text(config_text.replace("seed: 0", f"seed: {n}", 1))
    shutil.rmtree(seed_dir)


def wall_time(directory: Path, fmt: str, pure_python: bool) -> float:
    env = dict(os.environ, COLUMNS="200")
    if pure_python:
        env["LSTM_DEMO_BENCH_NO_LIBYAML"] = "1"
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", CHILD, "runs", str(directory), "--format", fmt],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=env)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--formats", default="json,table")
    parser.add_argument("--loaders", default="c,python", help="c (libyaml), python (the fallback), or both")
    args = parser.parse_args(argv)
    formats = args.formats.split(",")
    loaders = args.loaders.split(",")
    try:
        print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    except OSError:
        pass
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-runs-") as tmp:
        directory = Path(tmp) / "runs"
        directory.mkdir()
        make_records(directory, args.records)
        times: dict[tuple[str, str], list[float]] = {(loader, fmt): [] for loader in loaders for fmt in formats}
        for _ in range(args.repeat):
            for loader in loaders:
                for fmt in formats:
                    times[(loader, fmt)].append(wall_time(directory, fmt, pure_python=loader == "python"))
        for (loader, fmt), found in times.items():
            median = statistics.median(found)
            rows.append({"loader": loader, "format": fmt, "records": args.records, "median": median})
            print(f"{'libyaml (CSafeLoader)' if loader == 'c' else 'pure Python (SafeLoader)':26s} "
                  f"{fmt:6s} {args.records:6d} records: {' '.join(f'{t:6.2f}' for t in found)} s, "
                  f"median {median:.2f} s")
    return rows


if __name__ == "__main__":
    main()
