"""Where and how a run record was made: the provenance kept in its config.yaml.

    start_time, end_time   UTC, ISO 8601 (end_time is null until the run ends)
    hostname, pid          the machine and the process that wrote the record
    argv                   the command line
    python, numpy, lstm_demo   versions
    blas, blas_version     the BLAS numpy was built with (numpy.show_config)
    blas_threads           the thread count asked for by OPENBLAS_NUM_THREADS, MKL_NUM_THREADS or
                           OMP_NUM_THREADS (blas_threads_from names the variable); without one, the
                           number of cores, OpenBLAS's and MKL's default (blas_threads_from "cores")
    blas_core              the CPU core type the BLAS chose at run time (OpenBLAS: Haswell, SkylakeX, ...;
                           from threadpoolctl when it is installed, else from OpenBLAS itself), or "unknown"
    simd_baseline, simd_found   numpy's SIMD features: compiled in, and found on this CPU at run time
    cpu_overrides          OPENBLAS_CORETYPE, NPY_DISABLE_CPU_FEATURES, NPY_ENABLE_CPU_FEATURES, those set
    slurm                  SLURM_JOB_ID, SLURM_ARRAY_JOB_ID, SLURM_ARRAY_TASK_ID, those that are set

The BLAS core and the SIMD features decide the order in which float64 sums are taken: the same
seed gives the same bits on the same platform; another CPU family agrees to about 1e-12
relative on the probes and gradients, and a chaotic training run may take another path.

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
# the variables that override what numpy and OpenBLAS pick for the CPU
CPU_OVERRIDES = ("OPENBLAS_CORETYPE", "NPY_DISABLE_CPU_FEATURES", "NPY_ENABLE_CPU_FEATURES")
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


def blas_core() -> str:
    """The CPU core type the BLAS runs on ("Haswell", "SkylakeX", ...), or "unknown".

    threadpoolctl's answer where it is installed (imported here, only when asked); else
    OpenBLAS's own ``openblas_get_corename`` from the library numpy loaded (numpy.libs)."""
    import numpy as np  # noqa: F401  (loads the BLAS that threadpoolctl then finds)

    try:
        import threadpoolctl
    except ImportError:
        return _openblas_corename() or "unknown"
    found = [lib for lib in threadpoolctl.threadpool_info() if lib.get("user_api") == "blas"]
    found.sort(key=lambda lib: "numpy" not in str(lib.get("filepath")))  # numpy's own first (torch has its own)
    return str(found[0].get("architecture") or found[0].get("internal_api") or "unknown") if found else "unknown"


def _openblas_corename() -> str | None:
    import ctypes
    import glob

    import numpy as np

    for path in sorted(glob.glob(os.path.join(os.path.dirname(np.__file__) + ".libs", "*openblas*"))):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in ("scipy_", ""):
            for suffix in ("64_", "_64", ""):
                name = f"{prefix}openblas_get_corename{suffix}"
                if hasattr(lib, name):
                    function = getattr(lib, name)
                    function.restype = ctypes.c_char_p
                    return function().decode()
    return None


def simd() -> dict[str, Any]:
    """numpy's SIMD features: ``simd_baseline`` (compiled in) and ``simd_found`` (used on this CPU)."""
    import numpy as np

    try:
        info = np.show_config(mode="dicts")["SIMD Extensions"]
        return {"simd_baseline": list(info.get("baseline") or []), "simd_found": list(info.get("found") or [])}
    except (TypeError, KeyError, ValueError):
        return {"simd_baseline": [], "simd_found": []}


def platform_info() -> dict[str, Any]:
    """What decides the float64 bits: the BLAS, its core type and numpy's SIMD features."""
    return {**blas(), "blas_core": blas_core(), **simd(),
            "cpu_overrides": {name: os.environ[name] for name in CPU_OVERRIDES if os.environ.get(name)}}


def platform_lines() -> list[str]:
    """``lstm-demo --version --verbose``: the platform, one fact a line."""
    import numpy as np

    info = platform_info()
    lines = [f"python {platform.python_version()}, numpy {np.__version__}",
             f"blas: {info['blas']} {info['blas_version']}, core {info['blas_core']}, "
             f"{info['blas_threads']} thread(s) ({info['blas_threads_from']})",
             f"numpy simd: baseline {' '.join(info['simd_baseline']) or '-'}; "
             f"found {' '.join(info['simd_found']) or '-'}"]
    overrides = ", ".join(f"{k}={v}" for k, v in info["cpu_overrides"].items())
    lines.append(f"cpu overrides: {overrides or 'none'}")
    return lines


def collect(argv: list[str] | None = None) -> dict[str, Any]:
    """The provenance of a run starting now (``end_time`` None until the run ends)."""
    import numpy as np

    from lstm_cli import __version__

    slurm = {name: os.environ[name] for name in SLURM_VARIABLES if os.environ.get(name)}
    return {"start_time": now(), "end_time": None, "hostname": socket.gethostname(), "pid": os.getpid(),
            "argv": list(sys.argv if argv is None else argv),
            "python": platform.python_version(), "numpy": np.__version__, "lstm_demo": __version__,
            **platform_info(), "slurm": slurm}

