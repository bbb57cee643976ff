"""How much memory a command may use, checked before it allocates.

A command estimates the bytes its largest arrays need and calls ``check``
before it builds them, so an impossible request (``--gap 1000000000``, a
checkpoint that claims a 3 GB array) ends at once with one line naming the
size and the limit instead of a MemoryError minutes later. The limit is the
machine's available memory (``MemAvailable`` of /proc/meminfo), or the value
of the environment variable LSTM_DEMO_MEMORY_LIMIT (bytes, or with a suffix
K, M, G, T: ``LSTM_DEMO_MEMORY_LIMIT=512M``).
"""

from __future__ import annotations

import os

from lstm_cli.errors import BadInput

ENV = "LSTM_DEMO_MEMORY_LIMIT"
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_size(text: str) -> int:
    """``"512M"`` -> 536870912; BadInput naming the variable for anything else."""
    number, unit = text.strip(), ""
    if number[-1:].upper() in _UNITS:
        number, unit = number[:-1], number[-1].upper()
    if number.endswith(("b", "B")) and unit == "":
        number = number[:-1]
    if not number.isdigit() or len(number) > 20:
        raise BadInput(f"{ENV}={text!r} is not a size; use bytes or a number with K, M, G or T (e.g. 512M)")
    return int(number) * _UNITS[unit]


def available() -> int | None:
    """The machine's available memory in bytes, or None when it cannot be read."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return None


def limit() -> tuple[int | None, str]:
    """(bytes a command may use or None for no known limit, where that number comes from)."""
    text = os.environ.get(ENV, "").strip()
    if text:
        return parse_size(text), ENV
    return available(), "available memory"


def human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1024 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PB"


def check(need: float, what: str) -> None:
    """BadInput when ``need`` bytes exceed the limit; ``what`` names the request in the message."""
    bytes_allowed, source = limit()
    if bytes_allowed is not None and need > bytes_allowed:
        raise BadInput(f"{what} needs about {human(need)} of memory, more than the limit of "
                       f"{human(bytes_allowed)} ({source}; set {ENV} to change it)")


# ---- estimates (bytes, float64; measured with tracemalloc and rounded up: see docs/hardening.md) ----

def probe_bytes(kind: str, hidden: int, batch: int, length: int, input_size: int) -> float:
    """A gradient probe of one model: the forward and backward caches of the batch plus each
    step's share of dL/dW_hh, a (G*H, H) matrix per step."""
    gates = 4 if kind == "lstm" else 1
    return 8.0 * length * (3 * gates * hidden * hidden + 8 * batch * gates * hidden + batch * input_size)


def train_bytes(kind: str, hidden: int, length: int, input_size: int, batch: int, eval_size: int,
                probe_size: int) -> float:
    """A training run: the largest of a training step, the held-out evaluation (its data kept
    for the whole run) and the gradient probe."""
    gates = 4 if kind == "lstm" else 1
    step = 8.0 * length * (8 * batch * gates * hidden + batch * input_size)
    heldout = 8.0 * length * (8 * eval_size * gates * hidden + 2 * eval_size * input_size)
    return max(step, heldout, probe_bytes(kind, hidden, probe_size, length, input_size))
