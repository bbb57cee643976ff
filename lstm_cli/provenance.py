"""Where and how a run record was made: the provenance kept in its config.yaml.

    start_time, end_time   UTC, ISO 8601 (end_time is null until the run ends)
    hostname, pid          the machine and the process that wrote the record
    argv                   the command line
    python, numpy, lstm_demo   versions
    blas, blas_version     the BLAS numpy was built with (numpy.show_config)
    blas_threads           the thread count asked for by OPENBLAS_NUM_THREADS, MKL_NUM_THREADS or
                           OMP_NUM_THREADS (blas_threads_from names the variable); without one, the
                           number of cores, OpenBLAS's and MKL's default (blas_threads_from "cores")
    slurm                  SLURM_JOB_ID, SLURM_ARRAY_JOB_ID, SLURM_ARRAY_TASK_ID, those that are set

None of it is a setting: it never enters a run key, and a resumed sweep keeps
a record made on another host or at another time (the resume check compares
the training settings only).
"""

from __future__ import annotations

import os
import platform
import socket
import sys
from datetime import datetime, timezone
from typing import Any

SLURM_VARIABLES = ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID")
# the variable each BLAS reads first for its thread count, then the OpenMP one both honour
THREAD_VARIABLES = {"openblas": ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"),
                    "mkl": ("MKL_NUM_THREADS", "OMP_NUM_THREADS")}


def now() -> str:
    """The current time in UTC, ISO 8601 to the second, e.g. 2026-11-28T01:02:03+00:00."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def blas() -> dict[str, Any]:
    """The BLAS numpy was built with, its version and the thread count it was asked to use."""
    import numpy as np

    try:
        info = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        name, version = str(info.get("name")), str(info.get("version"))
    except (TypeError, KeyError, ValueError):  # a numpy too old for mode="dicts", or a build without it
        name, version = "unknown", "unknown"
    family = "mkl" if "mkl" in name.lower() else "openblas"
    for variable in THREAD_VARIABLES[family]:
        value = os.environ.get(variable, "").strip()
        if value.isdigit():
            return {"blas": name, "blas_version": version, "blas_threads": int(value),
                    "blas_threads_from": variable}
    return {"blas": name, "blas_version": version, "blas_threads": os.cpu_count(), "blas_threads_from": "cores"}


def collect(argv: list[str] | None = None) -> dict[str, Any]:
    """The provenance of a run starting now (``end_time`` None until the run ends)."""
    import numpy as np

    from lstm_cli import __version__

    slurm = {name: os.environ[name] for name in SLURM_VARIABLES if os.environ.get(name)}
    return {"start_time": now(), "end_time": None, "hostname": socket.gethostname(), "pid": os.getpid(),
            "argv": list(sys.argv if argv is None else argv),
            "python": platform.python_version(), "numpy": np.__version__, "lstm_demo": __version__,
            **blas(), "slurm": slurm}

