"""Numbers as the tool prints them, and decisions made on what is printed.

Another CPU family sums in another order, so a float64 result may differ in its last bits:
a share of -1e-14 decades here is +1e-14 there. Nothing the tool prints may show that noise:

- a value that prints as zero prints as ``0.0`` whatever its sign (never ``-0.0``, ``+0.0``);
- a sentence decides on the value it prints beside it (rounded the same way), so two runs
  whose numbers print the same say the same words; a word can change only together with a
  printed digit. Which of two shares is larger is a tie when they print the same, and a tie
  goes to the first one named.

Imports nothing of the tool: every layer may use it.
"""

from __future__ import annotations

import math


def fixed(value: float, decimals: int = 1, signed: bool = False) -> str:
    """``value`` with ``decimals`` decimals (``signed``: with its sign, ``+1.2``); a value that
    rounds to zero is ``0.0`` either way; inf (``+inf`` signed), -inf and nan spelled out."""
    if not math.isfinite(value):
        return "nan" if math.isnan(value) else (("+inf" if signed else "inf") if value > 0 else "-inf")
    text = f"{value:+.{decimals}f}" if signed else f"{value:.{decimals}f}"
    return f"{0.0:.{decimals}f}" if float(text) == 0 else text


def sci(value: float | None, digits: int = 2) -> str:
    """The one style of a gradient norm or ratio in every table: ``digits`` significant digits in
    scientific notation (``7.3e-01``), zero as ``0.0e+00`` (never ``-0.0e+00``), inf, -inf and nan
    spelled out, None (no value) as ``-``."""
    if value is None:
        return "-"
    value = float(value)
    if not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return f"{value + 0.0:.{digits - 1}e}" if significant(value, digits) != 0 else f"{0.0:.{digits - 1}e}"


def rounded(value: float, decimals: int) -> float:
    """``value`` as it prints with ``decimals`` decimals (0.0, never -0.0, for what prints as zero)."""
    if not math.isfinite(value):
        return value
    return float(f"{value:.{decimals}f}") + 0.0


def significant(value: float, digits: int = 2) -> float:
    """``value`` as it prints with ``digits`` significant digits (``1.3e-35`` for 2)."""
    if not math.isfinite(value) or value == 0:
        return value + 0.0
    return float(f"{value:.{digits - 1}e}") + 0.0


def largest(values: dict[str, float], decimals: int, smallest: bool = False) -> str:
    """The name of the largest (``smallest``: the smallest) value as printed with ``decimals``
    decimals; of values that print the same, the first named."""
    pick = min if smallest else max
    return pick(values, key=lambda name: rounded(values[name], decimals))


def exact(value: float) -> str:
    """A float as short as ``:g`` writes it when that is the same number, else in full (``repr``):
    a setting quoted in a label or a ``--model`` text is the very number, never a rounded one."""
    short = f"{value:g}"
    return short if not math.isfinite(value) or float(short) == value else repr(value)
